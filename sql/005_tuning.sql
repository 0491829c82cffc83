-- 005: choosing k (trials of a num_clusters sweep) and anomaly detection.

CREATE FUNCTION @api@.ml_trial_info(model_name text)
RETURNS TABLE (trial_id int, hyperparameters jsonb, davies_bouldin_index float8, mean_squared_distance float8,
               silhouette_score float8, calinski_harabasz_score float8, status text, error_message text,
               is_optimal boolean, is_elbow boolean)
LANGUAGE plpgsql STABLE AS $$
DECLARE m ml.models := ml.resolve_model(model_name);
BEGIN
  RETURN QUERY
    SELECT t.trial_id, t.hyperparameters, (t.metrics ->> 'davies_bouldin_index')::float8,
           (t.metrics ->> 'mean_squared_distance')::float8, (t.metrics ->> 'silhouette_score')::float8,
           (t.metrics ->> 'calinski_harabasz_score')::float8, t.status, t.error_message, t.is_optimal, t.is_elbow
    FROM ml.trials t WHERE t.model_id = m.id ORDER BY t.trial_id;
END $$;
COMMENT ON FUNCTION @api@.ml_trial_info(text) IS
  'sqlml: one row per trial of a num_clusters sweep: metrics, which trial the model serves (is_optimal) and the elbow of the curve (is_elbow)';

-- BigQuery ML's ML.DETECT_ANOMALIES for k-means: normalized_distance = distance to the nearest
-- centroid / that cluster's radius (RMS distance of its training members); a row is an anomaly
-- above the (1 - contamination) quantile of the training rows' normalized distances. The
-- quantiles are stored at training time on a 0.1% grid from the median up.
CREATE FUNCTION @api@.ml_detect_anomalies(model_name text, query text, options jsonb DEFAULT '{}')
RETURNS TABLE (input jsonb, is_anomaly boolean, normalized_distance float8, centroid_id int)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options, ARRAY['contamination']);
  q text := ml.strip_query(query);
  threshold float8;
BEGIN
  IF m.model_type <> 'kmeans' THEN
    PERFORM ml.invalid(format('ml_detect_anomalies is available for kmeans models; a %s model gives outlier_score in ml_predict', m.model_type));
  END IF;
  IF options IS NULL OR NOT options ? 'contamination' THEN
    PERFORM ml.invalid('option "contamination" is required: the expected share of anomalies in the training data, between 0 and 0.5, e.g. ''{"contamination": 0.02}''');
  END IF;
  PERFORM ml.opt_number(options, 'contamination', 0, 0.5);
  threshold := (t.artifact -> 'anomaly_quantiles' ->> round((0.5 - (options ->> 'contamination')::float8) * 1000)::int)::float8;
  RETURN QUERY EXECUTE format($q$
    SELECT to_jsonb(s.q), n.v / r.radius > $1, n.v / r.radius, n.c
    FROM (SELECT q, %1$s(%2$s) AS d FROM (%3$s) q) s
    CROSS JOIN LATERAL (SELECT i::int AS c, v FROM unnest(s.d) WITH ORDINALITY AS x(v, i) ORDER BY v, i LIMIT 1) n
    CROSS JOIN LATERAL (SELECT nullif((%4$L::jsonb ->> (n.c - 1))::float8, 0) AS radius) r
  $q$, t.distances_function, ml.feature_arguments(t.artifact), q, t.artifact -> 'radii') USING threshold;
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_detect_anomalies(text, text, jsonb) IS
  'sqlml: input, is_anomaly, normalized_distance, centroid_id for every row of a query ("contamination" in [0, 0.5])';
