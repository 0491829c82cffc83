-- 007: supervised models (linear_reg, logistic_reg, boosted_tree_*, random_forest_*, auto):
-- their options, scoring in ml_predict, BigQuery ML's regression and classification metrics
-- in ml_evaluate, ml_roc_curve, ml_confusion_matrix, ml_feature_importance and
-- ml_explain_predict. Functions whose result columns grow are dropped and created again
-- (their new columns come after the old ones, so positional readers keep working).

ALTER TABLE ml.models ADD COLUMN probabilities_signature text;   -- <function_name>_probabilities
ALTER TABLE ml.trials ADD COLUMN explain_function text;          -- per-feature contributions (linear models)
ALTER TABLE ml.training_info ADD COLUMN eval_loss float8, ADD COLUMN learning_rate float8;

CREATE OR REPLACE FUNCTION ml.drop_generated_functions() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, ml AS $$
DECLARE sig text;
BEGIN
  IF OLD.distances_function IS NOT NULL THEN
    EXECUTE format('DROP FUNCTION IF EXISTS %s', OLD.distances_function);
  END IF;
  -- The public functions serve the latest ready version; drop them only with their version.
  FOREACH sig IN ARRAY ARRAY[OLD.function_signature, OLD.probabilities_signature] LOOP
    IF sig IS NOT NULL AND NOT EXISTS (
         SELECT 1 FROM ml.models m WHERE sig IN (m.function_signature, m.probabilities_signature) AND m.id <> OLD.id) THEN
      EXECUTE format('DROP FUNCTION IF EXISTS %s', sig);
    END IF;
  END LOOP;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ml.drop_trial_function() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, ml AS $$
BEGIN
  IF OLD.distances_function IS NOT NULL THEN
    EXECUTE format('DROP FUNCTION IF EXISTS %s', OLD.distances_function);
  END IF;
  IF OLD.explain_function IS NOT NULL THEN
    EXECUTE format('DROP FUNCTION IF EXISTS %s', OLD.explain_function);
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ml.apply_grant() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, ml AS $$
DECLARE
  g ml.grants := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  f text;
BEGIN
  FOR f IN
    SELECT s FROM ml.models, unnest(ARRAY[function_signature, probabilities_signature]) AS s
     WHERE model_name = g.model_name AND s IS NOT NULL
    UNION
    SELECT s FROM ml.trials t JOIN ml.models m ON m.id = t.model_id, unnest(ARRAY[t.distances_function, t.explain_function]) AS s
     WHERE m.model_name = g.model_name AND s IS NOT NULL
  LOOP
    IF TG_OP = 'DELETE' THEN
      EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I', f, g.grantee);
    ELSE
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, g.grantee);
    END IF;
  END LOOP;
  RETURN NULL;
END $$;

-- A classifier's <function_name>_probabilities is sqlml's too.
CREATE OR REPLACE FUNCTION ml.name_conflict(p_model text, p_function text, p_caller name) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, ml AS $$
DECLARE other name;
BEGIN
  SELECT owner INTO other FROM ml.models WHERE model_name = p_model LIMIT 1;
  IF other IS NOT NULL AND NOT pg_has_role(p_caller, other, 'USAGE') THEN
    RETURN format('model name "%s" is taken by role "%s"; choose another name', p_model, other);
  END IF;
  SELECT model_name INTO other FROM ml.models
   WHERE p_function IN (function_name, function_name || '_probabilities') AND model_name <> p_model LIMIT 1;
  IF other IS NOT NULL THEN
    RETURN format('function name "%s" is already a scoring function of model "%s"; set option "function_name" to another name', p_function, other);
  END IF;
  IF EXISTS (SELECT 1 FROM pg_proc p
              WHERE p.proname = p_function
                AND p.pronamespace = (SELECT value FROM ml.settings WHERE key = 'api_schema')::regnamespace
                AND NOT EXISTS (SELECT 1 FROM ml.models m
                                 WHERE p.oid::regprocedure::text IN (m.function_signature, m.probabilities_signature))) THEN
    RETURN format('a function named "%s" already exists and was not made by sqlml; set option "function_name" to another name', p_function);
  END IF;
  RETURN NULL;
END $$;

-- Options: the clustering validator keeps its name's job for kmeans/hdbscan; a dispatcher
-- sends supervised model types to their own.
ALTER FUNCTION ml.validate_options(text, jsonb) RENAME TO validate_clustering_options;

CREATE FUNCTION ml.supervised_types() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT ARRAY['linear_reg', 'logistic_reg', 'boosted_tree_regressor', 'boosted_tree_classifier',
               'random_forest_regressor', 'random_forest_classifier', 'auto']
$$;

CREATE FUNCTION ml.metric_names(kind text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE kind
    WHEN 'regression' THEN ARRAY['r2_score', 'explained_variance', 'mean_absolute_error', 'mean_squared_error',
                                 'mean_squared_log_error', 'median_absolute_error']
    ELSE ARRAY['roc_auc', 'precision', 'recall', 'accuracy', 'f1_score', 'log_loss'] END
$$;

CREATE FUNCTION ml.validate_supervised_options(model_type text, options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  o jsonb := options;
  known text[] := ARRAY['exclude', 'ignore', 'max_categories', 'function_name', 'seed', 'max_runtime',
                        'input_label_cols', 'target', 'data_split_method', 'data_split_eval_fraction', 'data_split_col',
                        'category_encoding_method'];
  classifier boolean := model_type IN ('logistic_reg', 'boosted_tree_classifier', 'random_forest_classifier', 'auto');
  k text;
  v jsonb;
BEGIN
  IF classifier THEN known := known || ARRAY['class_weights', 'auto_class_weights']; END IF;
  IF model_type IN ('linear_reg', 'logistic_reg') THEN
    known := known || ARRAY['l1_reg', 'l2_reg', 'max_iterations', 'fit_intercept'];
  ELSIF model_type LIKE 'boosted_tree_%' THEN
    known := known || ARRAY['l1_reg', 'l2_reg', 'max_iterations', 'learn_rate', 'max_tree_depth', 'num_parallel_tree', 'subsample',
                            'min_tree_child_weight', 'min_split_loss', 'colsample_bynode', 'early_stop', 'min_rel_progress'];
  ELSIF model_type LIKE 'random_forest_%' THEN
    known := known || ARRAY['l1_reg', 'l2_reg', 'max_tree_depth', 'num_parallel_tree', 'subsample', 'min_tree_child_weight',
                            'min_split_loss', 'colsample_bynode'];
  ELSE
    known := known || ARRAY['problem_type', 'objective'];
  END IF;
  FOR k IN SELECT jsonb_object_keys(options) LOOP
    IF NOT k = ANY (known) THEN
      PERFORM ml.invalid(format('unknown option "%s" for model_type %s; allowed options: %s', k, model_type, array_to_string(known, ', ')));
    END IF;
  END LOOP;

  -- The label: BigQuery ML's input_label_cols (a one-element array), Redshift ML's target.
  IF o ? 'input_label_cols' AND o ? 'target' THEN
    PERFORM ml.invalid('give the label column once: "input_label_cols" (BigQuery ML) or "target" (Redshift ML), not both');
  END IF;
  v := coalesce(o -> 'input_label_cols', o -> 'target');
  IF v IS NOT NULL THEN
    IF jsonb_typeof(v) = 'array' AND jsonb_array_length(v) = 1 THEN v := v -> 0; END IF;
    IF jsonb_typeof(v) <> 'string' THEN
      PERFORM ml.invalid(format('option "%s" must name one label column, e.g. ["ltv"] (got %s)',
                                CASE WHEN o ? 'target' THEN 'target' ELSE 'input_label_cols' END, coalesce(o -> 'input_label_cols', o -> 'target')::text));
    END IF;
    o := jsonb_set(o - 'target', '{input_label_cols}', jsonb_build_array(v));
  END IF;

  PERFORM ml.opt_enum(o, 'data_split_method', ARRAY['auto_split', 'random', 'custom', 'seq', 'no_split']);
  PERFORM ml.opt_number(o, 'data_split_eval_fraction', 0, 0.99);
  IF o ? 'data_split_col' AND jsonb_typeof(o -> 'data_split_col') <> 'string' THEN
    PERFORM ml.invalid(format('option "data_split_col" must be a column name (got %s)', (o -> 'data_split_col')::text));
  END IF;
  IF lower(o ->> 'data_split_method') IN ('custom', 'seq') AND NOT o ? 'data_split_col' THEN
    PERFORM ml.invalid(format('data_split_method "%s" needs option "data_split_col": %s', lower(o ->> 'data_split_method'),
      CASE lower(o ->> 'data_split_method') WHEN 'custom' THEN 'a boolean column, TRUE or NULL = evaluation row'
                                           ELSE 'the column to order by; the last rows (data_split_eval_fraction) evaluate' END));
  END IF;
  IF o ? 'data_split_col' AND lower(coalesce(o ->> 'data_split_method', '')) NOT IN ('custom', 'seq') THEN
    PERFORM ml.invalid('option "data_split_col" is only used with "data_split_method": "custom" or "seq"');
  END IF;
  PERFORM ml.opt_enum(o, 'category_encoding_method', ARRAY['one_hot_encoding', 'label_encoding']);
  PERFORM ml.opt_number(o, 'l1_reg', 0, 1e12);
  PERFORM ml.opt_number(o, 'l2_reg', 0, 1e12);
  PERFORM ml.opt_int(o, 'max_iterations', 1, 10000);
  PERFORM ml.opt_bool(o, 'fit_intercept');
  PERFORM ml.opt_number(o, 'learn_rate', 1e-6, 1);
  PERFORM ml.opt_int(o, 'max_tree_depth', 1, 20);
  PERFORM ml.opt_int(o, 'num_parallel_tree', CASE WHEN model_type LIKE 'random_forest_%' THEN 2 ELSE 1 END, 1000);
  PERFORM ml.opt_number(o, 'subsample', 0.01, 1);
  PERFORM ml.opt_number(o, 'colsample_bynode', 0.01, 1);
  PERFORM ml.opt_number(o, 'min_tree_child_weight', 0, 1e12);
  PERFORM ml.opt_number(o, 'min_split_loss', 0, 1e12);
  PERFORM ml.opt_bool(o, 'early_stop');
  PERFORM ml.opt_number(o, 'min_rel_progress', 0, 1);
  PERFORM ml.opt_bool(o, 'auto_class_weights');
  IF o ? 'class_weights' THEN
    IF (o -> 'auto_class_weights') = 'true'::jsonb THEN
      PERFORM ml.invalid('"class_weights" and "auto_class_weights" cannot be combined; give one');
    END IF;
    IF jsonb_typeof(o -> 'class_weights') <> 'object' OR EXISTS (
         SELECT 1 FROM jsonb_each(o -> 'class_weights') e WHERE jsonb_typeof(e.value) <> 'number' OR (e.value #>> '{}')::float8 <= 0) THEN
      PERFORM ml.invalid(format('option "class_weights" must be an object of positive weights per label, e.g. {"true": 5, "false": 1} (got %s)', (o -> 'class_weights')::text));
    END IF;
  END IF;
  PERFORM ml.opt_enum(o, 'problem_type', ARRAY['regression', 'binary_classification', 'multiclass_classification']);
  PERFORM ml.opt_enum(o, 'objective', ml.metric_names('regression') || ml.metric_names('classification'));
  IF o ? 'objective' AND o ? 'problem_type' AND NOT lower(o ->> 'objective') = ANY (
       ml.metric_names(CASE WHEN lower(o ->> 'problem_type') = 'regression' THEN 'regression' ELSE 'classification' END)) THEN
    PERFORM ml.invalid(format('objective "%s" does not fit problem_type %s; use one of %s', o ->> 'objective', o ->> 'problem_type',
      array_to_string(ml.metric_names(CASE WHEN lower(o ->> 'problem_type') = 'regression' THEN 'regression' ELSE 'classification' END), ', ')));
  END IF;
  FOREACH k IN ARRAY ARRAY['data_split_method', 'category_encoding_method', 'problem_type', 'objective'] LOOP
    IF o ? k THEN o := jsonb_set(o, ARRAY[k], to_jsonb(lower(o ->> k))); END IF;
  END LOOP;
  RETURN o;
END $$;

CREATE FUNCTION ml.validate_options(model_type text, options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE common jsonb;
BEGIN
  IF model_type = ANY (ml.supervised_types()) THEN
    IF options IS NOT NULL AND jsonb_typeof(options) <> 'object' THEN
      PERFORM ml.invalid(format('options must be a JSON object such as ''{"input_label_cols": ["ltv"]}'' (got %s)', options::text));
    END IF;
    -- The options every model type shares are checked (and "ignore" folded) by the clustering
    -- validator, given only those.
    common := ml.validate_clustering_options(model_type,
      (SELECT coalesce(jsonb_object_agg(key, value), '{}') FROM jsonb_each(coalesce(options, '{}'))
        WHERE key IN ('exclude', 'ignore', 'max_categories', 'function_name', 'seed', 'max_runtime')));
    RETURN ml.validate_supervised_options(model_type, coalesce(options, '{}') - 'ignore' - 'exclude' || common);
  END IF;
  RETURN ml.validate_clustering_options(model_type, options);
END $$;

CREATE OR REPLACE FUNCTION @api@.ml_create_model(model_name text, model_type text, training_query text,
                                                 options jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  mtype text := lower(trim(model_type));
  opts jsonb;
  fn text;
  conflict text;
  ver int;
  mid bigint;
  jid bigint;
BEGIN
  PERFORM ml.check_identifier('model name', model_name);
  IF mtype IS NULL OR NOT mtype = ANY (ARRAY['kmeans', 'hdbscan'] || ml.supervised_types()) THEN
    PERFORM ml.invalid(format('unknown model_type "%s"; supported: %s', model_type,
                              array_to_string(ARRAY['kmeans', 'hdbscan'] || ml.supervised_types(), ', ')));
  END IF;
  IF training_query IS NULL OR trim(training_query) = '' THEN
    PERFORM ml.invalid('training_query must be a SELECT statement, e.g. SELECT * FROM customers');
  END IF;
  opts := ml.validate_options(mtype, options);
  fn := coalesce(opts ->> 'function_name', model_name || '_predict');
  IF mtype IN ('logistic_reg', 'boosted_tree_classifier', 'random_forest_classifier', 'auto') AND octet_length(fn) > 49 THEN
    PERFORM ml.invalid(format('function name "%s" is too long for a classifier: "%s_probabilities" must fit in 63 bytes; set option "function_name" to a shorter name', fn, fn));
  END IF;

  -- Versions of one name are numbered in order, whoever races.
  PERFORM pg_advisory_xact_lock(hashtext('sqlml.model:' || model_name));
  conflict := coalesce(ml.name_conflict(model_name, fn, current_user), ml.name_conflict(model_name, fn || '_probabilities', current_user));
  IF conflict IS NOT NULL THEN PERFORM ml.invalid(conflict); END IF;
  SELECT coalesce(max(m.version), 0) + 1 INTO ver FROM ml.models m WHERE m.model_name = ml_create_model.model_name;

  INSERT INTO ml.models (model_name, version, model_type, options, function_name)
  VALUES (model_name, ver, mtype, opts, fn) RETURNING id INTO mid;
  INSERT INTO ml.jobs (kind, model_id, training_query) VALUES ('train', mid, training_query) RETURNING id INTO jid;
  UPDATE ml.models SET job_id = jid WHERE id = mid;
  RETURN jid;
END $$;

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
