-- Scoring inside PostgreSQL: ml_predict (every family) and ml_detect_anomalies (k-means).

CREATE OR REPLACE FUNCTION ml.threshold_option(t ml.trials, options jsonb) RETURNS float8
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
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
CREATE OR REPLACE FUNCTION ml.predicted_class_sql(artifact jsonb, p text) RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT CASE WHEN artifact ->> 'problem' = 'binary'
              THEN format('(CASE WHEN %1$s[2] >= $1 THEN 2 ELSE 1 END)', p)
              ELSE format('(SELECT u.i::int FROM unnest(%1$s) WITH ORDINALITY u(v, i) ORDER BY u.v DESC, u.i LIMIT 1)', p) END
$$;

-- A clustering model's rows of a query: input, centroid_id (density models: -1 beyond the
-- cluster's reach), the nearest centroids, membership probability and outlier score (density),
-- and `extra` (an expression over the row's features, computed in the same pass).
-- (OFFSET 0 keeps the planner from pulling the subquery up, which would call the generated
-- function once per reference to its result instead of once per row.)
-- The distances are computed once per row by the generated function; the LATERAL
-- subquery only sorts k numbers (a subquery is rescanned, not re-planned, per row). For
-- density models the distances are to each cluster's nearest exemplar.
CREATE OR REPLACE FUNCTION ml.clustering_rows_sql(m ml.models, t ml.trials, q text, nearest int, extra text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, ml, pg_temp AS $f$
  SELECT format($q$
    SELECT to_jsonb(s.q) AS input, %5$s AS centroid_id, n.nearest, %6$s AS membership_probability, %7$s AS outlier_score, s.extra
    FROM (SELECT q, %1$s(%2$s) AS d, %11$s AS extra FROM (%3$s) q OFFSET 0) s
    CROSS JOIN LATERAL (
      SELECT (min(u.i) FILTER (WHERE u.r = 1))::int AS centroid_id, min(u.v) AS v,
             jsonb_agg(jsonb_build_object('centroid_id', u.i, 'distance', u.v) ORDER BY u.r) AS nearest
      FROM (SELECT v, i, row_number() OVER (ORDER BY v, i) AS r
              FROM unnest(s.d) WITH ORDINALITY AS x(v, i) ORDER BY v, i LIMIT %4$s) u) n
    CROSS JOIN LATERAL (SELECT (%8$L::jsonb ->> (n.centroid_id - 1))::float8 AS reach,
                               (%9$L::jsonb ->> (n.centroid_id - 1))::float8 AS pscale,
                               (%10$L::jsonb ->> (n.centroid_id - 1))::float8 AS oscale) c
  $q$, t.scores_function, ml.feature_arguments(t.artifact), q, nearest,
       CASE WHEN m.model_type = 'hdbscan' THEN 'CASE WHEN n.v <= c.reach THEN n.centroid_id ELSE -1 END' ELSE 'n.centroid_id' END,
       CASE WHEN m.model_type = 'hdbscan' THEN 'CASE WHEN n.v <= c.reach THEN least(1, c.pscale / greatest(n.v, 1e-300)) ELSE 0 END' ELSE 'NULL::float8' END,
       CASE WHEN m.model_type = 'hdbscan' THEN '1 - least(1, c.oscale / greatest(n.v, 1e-300))' ELSE 'NULL::float8' END,
       coalesce(t.artifact -> 'reach', '[]'), coalesce(t.artifact -> 'probability_scale', '[]'), coalesce(t.artifact -> 'outlier_scale', '[]'),
       extra)
$f$;

-- details was added for clv models (a changed result type needs the DROP).
DO $$ DECLARE f regprocedure := to_regprocedure(format('%I.ml_predict(text,text,jsonb)', @api_name@));
BEGIN
  IF f IS NOT NULL AND pg_get_function_result(f) NOT LIKE '%details%' THEN
    DROP FUNCTION @api@.ml_predict(text, text, jsonb);
  END IF;
END $$;
CREATE OR REPLACE FUNCTION @api@.ml_predict(model_name text, query text, options jsonb DEFAULT '{}')
RETURNS TABLE (input jsonb, centroid_id int, nearest_centroids_distance jsonb,
               membership_probability float8, outlier_score float8,
               predicted_value float8, predicted_label text, predicted_probs jsonb, details jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options, ARRAY['threshold', 'horizon', 'discount_rate', 'observation_end']);
  q text := ml.safe_query(ml.strip_query(query));
  nearest int := least((t.artifact ->> 'k')::int, 5);
  threshold float8 := ml.threshold_option(t, options);
BEGIN
  IF m.model_type = 'clv' THEN
    -- the query holds transactions: one row per customer, the RFM row as input
    RETURN QUERY SELECT * FROM ml.predict_clv(m, t, q, options);
    RETURN;
  END IF;
  IF m.model_type = 'pca' THEN
    -- BigQuery's ML.PREDICT of a PCA model: principal_component_1 .. k (here in details)
    RETURN QUERY EXECUTE format($q$
      SELECT to_jsonb(s.q), NULL::int, NULL::jsonb, NULL::float8, NULL::float8, NULL::float8, NULL::text, NULL::jsonb,
             (SELECT jsonb_object_agg('principal_component_' || u.i, u.v) FROM unnest(s.p) WITH ORDINALITY u(v, i))
        FROM (SELECT q, %1$s(%2$s) AS p FROM (%3$s) q OFFSET 0) s
    $q$, t.scores_function, ml.feature_arguments(t.artifact), q);
    RETURN;
  END IF;
  IF options ?| ARRAY['horizon', 'discount_rate', 'observation_end'] THEN
    PERFORM ml.invalid(format('options "horizon", "discount_rate" and "observation_end" apply to clv models; "%s" is a %s model', m.model_name, m.model_type));
  END IF;
  IF t.artifact ? 'problem' THEN
    -- Supervised: the scores function gives [prediction] or the class probabilities.
    RETURN QUERY EXECUTE format($q$
      SELECT to_jsonb(s.q), NULL::int, NULL::jsonb, NULL::float8, NULL::float8, %4$s, %5$s, %6$s, NULL::jsonb
      FROM (SELECT q, %1$s(%2$s) AS p FROM (%3$s) q OFFSET 0) s
    $q$, t.scores_function, ml.feature_arguments(t.artifact), q,
         CASE WHEN t.artifact ->> 'problem' = 'regression' THEN 's.p[1]' ELSE 'NULL::float8' END,
         CASE WHEN t.artifact ->> 'problem' = 'regression' THEN 'NULL::text'
              ELSE format('(%L::text[])[%s]', ml.class_labels(t.artifact), ml.predicted_class_sql(t.artifact, 's.p')) END,
         CASE WHEN t.artifact ->> 'problem' = 'regression' THEN 'NULL::jsonb'
              ELSE format('(SELECT jsonb_agg(jsonb_build_object(''label'', (%L::text[])[u.i], ''prob'', u.v) ORDER BY u.i) FROM unnest(s.p) WITH ORDINALITY u(v, i))',
                          ml.class_labels(t.artifact)) END)
    USING threshold;
    RETURN;
  END IF;
  -- k-means: the generated nearest function ranks the centroids and builds the list, and the
  -- input row becomes jsonb, both in the subquery, which runs in parallel workers.
  IF m.model_type = 'kmeans' AND t.nearest_function IS NOT NULL THEN
    RETURN QUERY EXECUTE format($q$
      SELECT s.input, (s.r).centroid_id, (s.r).nearest, NULL::float8, NULL::float8, NULL::float8, NULL::text, NULL::jsonb, NULL::jsonb
      FROM (SELECT to_jsonb(q) AS input, %1$s(%2$s) AS r FROM (%3$s) q OFFSET 0) s
    $q$, t.nearest_function, ml.feature_arguments(t.artifact), q);
    RETURN;
  END IF;
  RETURN QUERY EXECUTE format('SELECT c.input, c.centroid_id, c.nearest, c.membership_probability, c.outlier_score, NULL::float8, NULL::text, NULL::jsonb, NULL::jsonb FROM (%s) c',
                              ml.clustering_rows_sql(m, t, q, nearest, 'NULL::float8[]'));
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_predict(text, text, jsonb) IS
  'sqlml: score every row of a query inside PostgreSQL; input jsonb, then centroid_id + nearest_centroids_distance (k-means), membership_probability + outlier_score (hdbscan), predicted_value (regression) or predicted_label + predicted_probs (classification); for clv models the query holds transactions: one row per customer, predicted_value = CLV, details = p_alive, expected_purchases, expected_spend';

-- OFFSET 0: the distances function runs once per row, not once per reference to its result
-- (the planner would otherwise pull the subquery up into the LATERAL parts).
CREATE OR REPLACE FUNCTION @api@.ml_detect_anomalies(model_name text, query text, options jsonb DEFAULT '{}')
RETURNS TABLE (input jsonb, is_anomaly boolean, normalized_distance float8, centroid_id int)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options, ARRAY['contamination']);
  q text := ml.safe_query(ml.strip_query(query));
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
    FROM (SELECT q, %1$s(%2$s) AS d FROM (%3$s) q OFFSET 0) s
    CROSS JOIN LATERAL (SELECT i::int AS c, v FROM unnest(s.d) WITH ORDINALITY AS x(v, i) ORDER BY v, i LIMIT 1) n
    CROSS JOIN LATERAL (SELECT nullif((%4$L::jsonb ->> (n.c - 1))::float8, 0) AS radius) r
  $q$, t.scores_function, ml.feature_arguments(t.artifact), q, t.artifact -> 'radii') USING threshold;
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_detect_anomalies(text, text, jsonb) IS
  'sqlml: input, is_anomaly, normalized_distance, centroid_id for every row of a query ("contamination" in [0, 0.5])';

-- A k-means model's segment as one SQL expression over the columns of a row (built-in
-- operators, CASE and least() only): what postgres_fdw and Citus can evaluate on the shards,
-- e.g. EXECUTE format('UPDATE customers SET segment = %s', ml_scoring_expression('seg')).
-- Column names appear as quoted identifiers, unqualified (the row's own table).
CREATE OR REPLACE FUNCTION @api@.ml_scoring_expression(model_name text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  e text := m.artifact ->> 'scoring_expression';
BEGIN
  IF m.model_type <> 'kmeans' THEN
    PERFORM ml.invalid(format('ml_scoring_expression is for k-means models; "%s" is a %s model: score it with its generated function, created on each shard (docs/scale.md)', m.model_name, m.model_type));
  END IF;
  IF e IS NULL THEN
    PERFORM ml.invalid(format('model "%s" version %s has no scoring expression: it was trained before models kept one, or it is too large for one (more than 32 clusters, or over 1 MB of text with its categories); score it with its generated function, created on each shard (docs/scale.md)', m.model_name, m.version));
  END IF;
  RETURN e;
END $$;
COMMENT ON FUNCTION @api@.ml_scoring_expression(text) IS
  'sqlml: a k-means model''s segment (centroid_id) as one SQL expression over the columns, built-in operators only, so that postgres_fdw and Citus evaluate it on the shards';
