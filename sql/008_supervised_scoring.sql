-- 008: supervised models in ml_predict (predicted_value, predicted_label, predicted_probs) and
-- ml_evaluate (BigQuery ML's regression and classification metrics), eval_loss in
-- ml_training_info, candidates in ml_trial_info. Functions whose result columns grow are
-- dropped and created again (the new columns come after the old ones, so positional readers
-- keep working).

-- A supervised trial's classes as text[], and the label column it was trained on.
CREATE FUNCTION ml.class_labels(artifact jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT array_agg(c ORDER BY o)
    FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(artifact -> 'classes') = 'array' THEN artifact -> 'classes' ELSE '[]' END)
         WITH ORDINALITY AS x(c, o)
$$;

CREATE FUNCTION ml.label_column(artifact jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT artifact ->> 'label'
$$;

CREATE FUNCTION ml.threshold_option(t ml.trials, options jsonb) RETURNS float8
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF options ? 'threshold' THEN
    PERFORM ml.opt_number(options, 'threshold', 0, 1);
    IF coalesce(t.artifact ->> 'problem', '') <> 'binary' THEN
      PERFORM ml.invalid('option "threshold" applies to binary classification models only');
    END IF;
    RETURN (options ->> 'threshold')::float8;
  END IF;
  RETURN 0.5;
END $$;

-- The expression of a supervised prediction's class (1-based) from scores array s.p.
CREATE FUNCTION ml.predicted_class_sql(artifact jsonb, p text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN artifact ->> 'problem' = 'binary'
              THEN format('(CASE WHEN %1$s[2] >= $1 THEN 2 ELSE 1 END)', p)
              ELSE format('(SELECT u.i::int FROM unnest(%1$s) WITH ORDINALITY u(v, i) ORDER BY u.v DESC, u.i LIMIT 1)', p) END
$$;

CREATE OR REPLACE FUNCTION @api@.ml_predict(model_name text, query text, options jsonb DEFAULT '{}')
RETURNS TABLE (input jsonb, centroid_id int, nearest_centroids_distance jsonb,
               membership_probability float8, outlier_score float8,
               predicted_value float8, predicted_label text, predicted_probs jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options, ARRAY['threshold']);
  q text := ml.strip_query(query);
  nearest int := least((t.artifact ->> 'k')::int, 5);
  threshold float8 := ml.threshold_option(t, options);
BEGIN
  IF t.artifact ? 'problem' THEN
    -- Supervised: the scores function gives [prediction] or the class probabilities.
    RETURN QUERY EXECUTE format($q$
      SELECT to_jsonb(s.q), NULL::int, NULL::jsonb, NULL::float8, NULL::float8, %4$s, %5$s, %6$s
      FROM (SELECT q, %1$s(%2$s) AS p FROM (%3$s) q OFFSET 0) s
    $q$, t.distances_function, ml.feature_arguments(t.artifact), q,
         CASE WHEN t.artifact ->> 'problem' = 'regression' THEN 's.p[1]' ELSE 'NULL::float8' END,
         CASE WHEN t.artifact ->> 'problem' = 'regression' THEN 'NULL::text'
              ELSE format('(%L::text[])[%s]', ml.class_labels(t.artifact), ml.predicted_class_sql(t.artifact, 's.p')) END,
         CASE WHEN t.artifact ->> 'problem' = 'regression' THEN 'NULL::jsonb'
              ELSE format('(SELECT jsonb_agg(jsonb_build_object(''label'', (%L::text[])[u.i], ''prob'', u.v) ORDER BY u.i) FROM unnest(s.p) WITH ORDINALITY u(v, i))',
                          ml.class_labels(t.artifact)) END)
    USING threshold;
    RETURN;
  END IF;
  -- (OFFSET 0 keeps the planner from pulling the subquery up, which would call the generated
  -- function once per reference to its result instead of once per row.)
  -- Clustering: the distances are computed once per row by the generated function; the LATERAL
  -- subquery only sorts k numbers (a subquery is rescanned, not re-planned, per row). For
  -- density models the distances are to each cluster's nearest exemplar, and a row beyond the
  -- cluster's reach is noise (-1).
  RETURN QUERY EXECUTE format($q$
    SELECT to_jsonb(s.q), %5$s, n.nearest, %6$s, %7$s, NULL::float8, NULL::text, NULL::jsonb
    FROM (SELECT q, %1$s(%2$s) AS d FROM (%3$s) q OFFSET 0) s
    CROSS JOIN LATERAL (
      SELECT (min(u.i) FILTER (WHERE u.r = 1))::int AS centroid_id, min(u.v) AS v,
             jsonb_agg(jsonb_build_object('centroid_id', u.i, 'distance', u.v) ORDER BY u.r) AS nearest
      FROM (SELECT v, i, row_number() OVER (ORDER BY v, i) AS r
              FROM unnest(s.d) WITH ORDINALITY AS x(v, i) ORDER BY v, i LIMIT %4$s) u) n
    CROSS JOIN LATERAL (SELECT (%8$L::jsonb ->> (n.centroid_id - 1))::float8 AS reach,
                               (%9$L::jsonb ->> (n.centroid_id - 1))::float8 AS pscale,
                               (%10$L::jsonb ->> (n.centroid_id - 1))::float8 AS oscale) c
  $q$, t.distances_function, ml.feature_arguments(t.artifact), q, nearest,
       CASE WHEN m.model_type = 'hdbscan' THEN 'CASE WHEN n.v <= c.reach THEN n.centroid_id ELSE -1 END' ELSE 'n.centroid_id' END,
       CASE WHEN m.model_type = 'hdbscan' THEN 'CASE WHEN n.v <= c.reach THEN least(1, c.pscale / greatest(n.v, 1e-300)) ELSE 0 END' ELSE 'NULL::float8' END,
       CASE WHEN m.model_type = 'hdbscan' THEN '1 - least(1, c.oscale / greatest(n.v, 1e-300))' ELSE 'NULL::float8' END,
       coalesce(t.artifact -> 'reach', '[]'), coalesce(t.artifact -> 'probability_scale', '[]'), coalesce(t.artifact -> 'outlier_scale', '[]'));
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_predict(text, text, jsonb) IS
  'sqlml: score every row of a query inside PostgreSQL; input jsonb, then centroid_id + nearest_centroids_distance (k-means), membership_probability + outlier_score (hdbscan), predicted_value (regression) or predicted_label + predicted_probs (classification)';

-- The evaluated rows of a supervised model on a query: label y and scores p, labelled rows only.
CREATE FUNCTION ml.labelled_scores_sql(t ml.trials, q text, y_type text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT format('SELECT (q.%1$I)::%2$s AS y, %3$s(%4$s) AS p FROM (%5$s) q WHERE q.%1$I IS NOT NULL OFFSET 0',
                ml.label_column(t.artifact), y_type, t.distances_function, ml.feature_arguments(t.artifact), q)
$$;

-- Raised when the query lacks the label column.
CREATE FUNCTION ml.require_label(m ml.models, t ml.trials, q text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('SELECT q.%I FROM (%s) q LIMIT 0', ml.label_column(t.artifact), q);
EXCEPTION WHEN undefined_column THEN
  RAISE EXCEPTION USING ERRCODE = '42703',
    MESSAGE = format('the query has no column "%s", the label model "%s" was trained to predict; evaluation needs the true values', ml.label_column(t.artifact), m.model_name);
END $$;

DROP FUNCTION @api@.ml_evaluate(text, text, jsonb);
CREATE FUNCTION @api@.ml_evaluate(model_name text, query text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE (trial_id int, davies_bouldin_index float8, mean_squared_distance float8,
               silhouette_score float8, calinski_harabasz_score float8, stability float8,
               num_clusters int, noise_fraction float8, dbcv float8,
               mean_absolute_error float8, mean_squared_error float8, mean_squared_log_error float8,
               median_absolute_error float8, r2_score float8, explained_variance float8,
               "precision" float8, recall float8, accuracy float8, f1_score float8, log_loss float8, roc_auc float8)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options, ARRAY['threshold']);
  q text := ml.strip_query(query);
  threshold float8 := ml.threshold_option(t, options);
  mt jsonb := t.metrics;
BEGIN
  IF query IS NULL AND NOT options ? 'threshold' THEN
    RETURN QUERY SELECT t.trial_id, (mt ->> 'davies_bouldin_index')::float8, (mt ->> 'mean_squared_distance')::float8,
                        (mt ->> 'silhouette_score')::float8, (mt ->> 'calinski_harabasz_score')::float8,
                        (mt ->> 'stability')::float8, (mt ->> 'num_clusters')::int,
                        (mt ->> 'noise_fraction')::float8, (mt ->> 'dbcv')::float8,
                        (mt ->> 'mean_absolute_error')::float8, (mt ->> 'mean_squared_error')::float8,
                        (mt ->> 'mean_squared_log_error')::float8, (mt ->> 'median_absolute_error')::float8,
                        (mt ->> 'r2_score')::float8, (mt ->> 'explained_variance')::float8,
                        (mt ->> 'precision')::float8, (mt ->> 'recall')::float8, (mt ->> 'accuracy')::float8,
                        (mt ->> 'f1_score')::float8, (mt ->> 'log_loss')::float8, (mt ->> 'roc_auc')::float8;
    RETURN;
  END IF;
  IF query IS NULL THEN
    PERFORM ml.invalid('option "threshold" needs a query to score: ml_evaluate(model, query, ''{"threshold": 0.3}'')');
  END IF;
  IF t.artifact ->> 'problem' = 'regression' THEN
    PERFORM ml.require_label(m, t, q);
    RETURN QUERY EXECUTE format($q$
      WITH s AS (SELECT y, p[1] AS p FROM (%1$s) x)
      SELECT %2$s, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::int, NULL::float8, NULL::float8,
             avg(abs(y - p)), avg((y - p) ^ 2),
             CASE WHEN min(least(y, p)) >= 0 THEN avg(CASE WHEN y >= 0 AND p >= 0 THEN (ln(1 + y) - ln(1 + p)) ^ 2 END) END,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(y - p)),
             coalesce(1 - sum((y - p) ^ 2) / nullif(count(*) * var_pop(y), 0), 0),
             coalesce(1 - var_pop(y - p) / nullif(var_pop(y), 0), 0),
             NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8
      FROM s
    $q$, ml.labelled_scores_sql(t, q, 'float8'), t.trial_id);
    RETURN;
  ELSIF t.artifact ? 'problem' THEN
    PERFORM ml.require_label(m, t, q);
    RETURN QUERY EXECUTE format($q$
      WITH s AS (SELECT array_position(%2$L::text[], y) AS y, p FROM (%1$s) x),
      r AS (SELECT y, p, %3$s AS yhat FROM s),
      cls AS (SELECT c::int FROM generate_series(CASE WHEN %4$s = 2 THEN 2 ELSE 1 END, %4$s) c),
      per AS (SELECT cls.c,
                     count(*) FILTER (WHERE r.y = cls.c AND r.yhat = cls.c) AS tp,
                     count(*) FILTER (WHERE r.y IS DISTINCT FROM cls.c AND r.yhat = cls.c) AS fp,
                     count(*) FILTER (WHERE r.y = cls.c AND r.yhat <> cls.c) AS fn
                FROM cls CROSS JOIN r GROUP BY cls.c),
      pr AS (SELECT CASE WHEN tp + fp > 0 THEN tp::float8 / (tp + fp) ELSE 0 END AS pre,
                    CASE WHEN tp + fn > 0 THEN tp::float8 / (tp + fn) ELSE 0 END AS rec FROM per),
      ranked AS (SELECT cls.c, coalesce(r.y = cls.c, false) AS pos,
                        rank() OVER (PARTITION BY cls.c ORDER BY r.p[cls.c])
                          + (count(*) OVER (PARTITION BY cls.c, r.p[cls.c]) - 1) / 2.0 AS rk
                   FROM cls CROSS JOIN r),
      auc AS (SELECT CASE WHEN count(*) FILTER (WHERE pos) > 0 AND count(*) FILTER (WHERE NOT pos) > 0
                          THEN (sum(rk) FILTER (WHERE pos) - count(*) FILTER (WHERE pos) * (count(*) FILTER (WHERE pos) + 1) / 2.0)
                               / (count(*) FILTER (WHERE pos)::float8 * count(*) FILTER (WHERE NOT pos))
                          ELSE 0.5 END AS a
                FROM ranked GROUP BY c)
      SELECT %5$s, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::int, NULL::float8, NULL::float8,
             NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
             (SELECT avg(pre) FROM pr), (SELECT avg(rec) FROM pr),
             (SELECT avg(coalesce(y = yhat, false)::int)::float8 FROM r),
             (SELECT avg(CASE WHEN pre + rec > 0 THEN 2 * pre * rec / (pre + rec) ELSE 0 END) FROM pr),
             (SELECT avg(-ln(greatest(least(coalesce(p[y], 0), 1 - 1e-15), 1e-15))) FROM r),
             (SELECT avg(a)::float8 FROM auc)
    $q$, ml.labelled_scores_sql(t, q, 'text'), ml.class_labels(t.artifact), ml.predicted_class_sql(t.artifact, 'p'),
         jsonb_array_length(t.artifact -> 'classes'), t.trial_id)
    USING threshold;
    RETURN;
  END IF;
  IF m.model_type <> 'kmeans' THEN
    PERFORM ml.invalid(format('ml_evaluate with a query is available for kmeans and supervised models; for %s models call ml_evaluate(''%s'') for the training metrics', m.model_type, model_name));
  END IF;
  RETURN QUERY EXECUTE format($q$
    WITH a AS (
      SELECT n.c, n.v
      FROM (SELECT %1$s(%2$s) AS d FROM (%3$s) q OFFSET 0) s
      CROSS JOIN LATERAL (SELECT i::int AS c, v FROM unnest(s.d) WITH ORDINALITY AS x(v, i) ORDER BY v, i LIMIT 1) n),
    per AS (SELECT c, avg(v) AS spread FROM a GROUP BY c),
    r AS (SELECT p.c, max((p.spread + o.spread) / ((%4$L::jsonb -> (p.c - 1) ->> (o.c - 1))::float8)) AS ratio
            FROM per p JOIN per o ON o.c <> p.c GROUP BY p.c)
    SELECT %5$s, (SELECT avg(ratio) FROM r)::float8, (SELECT avg(v * v) FROM a)::float8, NULL::float8, NULL::float8, NULL::float8,
           (SELECT count(*) FROM per)::int, 0::float8, NULL::float8,
           NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
           NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8
  $q$, t.distances_function, ml.feature_arguments(t.artifact), q, t.artifact -> 'centroid_distances', t.trial_id);
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_evaluate(text, text, jsonb) IS
  'sqlml: one row of BigQuery ML metrics: clustering (davies_bouldin_index, ...), regression (mean_absolute_error .. explained_variance) or classification (precision .. roc_auc); training-time metrics, or scored on a query';

DROP FUNCTION @api@.ml_training_info(text);
CREATE FUNCTION @api@.ml_training_info(model_name text)
RETURNS TABLE (training_run int, iteration int, loss float8, duration_ms float8, cluster_info jsonb,
               eval_loss float8, learning_rate float8)
LANGUAGE plpgsql STABLE AS $$
DECLARE m ml.models := ml.resolve_model(model_name);
BEGIN
  RETURN QUERY
    SELECT t.training_run, t.iteration, t.loss, t.duration_ms, t.cluster_info, t.eval_loss, t.learning_rate
    FROM ml.training_info t WHERE t.model_id = m.id ORDER BY t.training_run, t.iteration;
END $$;
COMMENT ON FUNCTION @api@.ml_training_info(text) IS
  'sqlml: per training iteration: loss, eval_loss (supervised, with an evaluation split), learning rate, duration, cluster sizes and radii (k-means)';

DROP FUNCTION @api@.ml_trial_info(text);
CREATE FUNCTION @api@.ml_trial_info(model_name text)
RETURNS TABLE (trial_id int, hyperparameters jsonb, davies_bouldin_index float8, mean_squared_distance float8,
               silhouette_score float8, calinski_harabasz_score float8, status text, error_message text,
               is_optimal boolean, is_elbow boolean,
               hparam_tuning_evaluation_metrics jsonb, training_loss float8, eval_loss float8)
LANGUAGE plpgsql STABLE AS $$
DECLARE m ml.models := ml.resolve_model(model_name);
BEGIN
  RETURN QUERY
    SELECT t.trial_id, t.hyperparameters, (t.metrics ->> 'davies_bouldin_index')::float8,
           (t.metrics ->> 'mean_squared_distance')::float8, (t.metrics ->> 'silhouette_score')::float8,
           (t.metrics ->> 'calinski_harabasz_score')::float8, t.status, t.error_message, t.is_optimal, t.is_elbow,
           (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(coalesce(t.metrics, '{}')) e
             WHERE e.key = ANY (ml.metric_names('regression') || ml.metric_names('classification'))),
           (t.metrics ->> 'training_loss')::float8, (t.metrics ->> 'eval_loss')::float8
    FROM ml.trials t WHERE t.model_id = m.id ORDER BY t.trial_id;
END $$;
COMMENT ON FUNCTION @api@.ml_trial_info(text) IS
  'sqlml: one row per trial (a k of a num_clusters sweep, a candidate of an auto model): hyperparameters, metrics, which trial the model serves (is_optimal)';
