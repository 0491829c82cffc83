-- Validation of model names and options, done in SQL before anything is enqueued, so that a
-- bad request raises at the call (SQLSTATE 22023, invalid_parameter_value) with the option's
-- name, the allowed values and what was given.

-- 002: validation of model names and options, done in SQL before anything is enqueued, so a
-- bad request raises at the call (SQLSTATE 22023, invalid_parameter_value) with the option's
-- name, the allowed values and what was given.

CREATE OR REPLACE FUNCTION ml.invalid(message text, hint text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
BEGIN
  IF hint IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = message;
  END IF;
  RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = message, HINT = hint;
END $$;

-- Model and function names become SQL identifiers (quoted with %I); the suffix "_predict" must
-- still fit in PostgreSQL's 63-byte limit.
CREATE OR REPLACE FUNCTION ml.check_identifier(what text, name text, max_bytes int DEFAULT 55) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
BEGIN
  IF name IS NULL OR name !~ '^[A-Za-z_][A-Za-z0-9_]*$' OR octet_length(name) > max_bytes THEN
    PERFORM ml.invalid(format('%s %s is not a valid name: use letters, digits and underscores, starting with a letter or underscore, at most %s bytes',
                              what, coalesce(quote_literal(name), 'NULL'), max_bytes));
  END IF;
  RETURN name;
END $$;

CREATE OR REPLACE FUNCTION ml.show_value(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN v #>> '{}' ELSE v::text END
$$;

-- An options object with only these keys.
CREATE OR REPLACE FUNCTION ml.check_options(options jsonb, allowed text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE k text;
BEGIN
  IF options IS NULL THEN RETURN; END IF;
  IF jsonb_typeof(options) <> 'object' THEN
    PERFORM ml.invalid(format('options must be a JSON object (got %s)', options::text));
  END IF;
  FOR k IN SELECT jsonb_object_keys(options) LOOP
    IF NOT k = ANY (allowed) THEN
      PERFORM ml.invalid(format('unknown option "%s"; allowed: %s', k, array_to_string(allowed, ', ')));
    END IF;
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION ml.opt_int(options jsonb, key text, lo bigint, hi bigint) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE v jsonb := options -> key;
BEGIN
  IF v IS NULL THEN RETURN; END IF;
  IF jsonb_typeof(v) <> 'number' OR (v #>> '{}')::numeric <> trunc((v #>> '{}')::numeric)
     OR (v #>> '{}')::numeric < lo OR (v #>> '{}')::numeric > hi THEN
    PERFORM ml.invalid(format('option "%s" must be an integer between %s and %s (got "%s")', key, lo, hi, ml.show_value(v)));
  END IF;
END $$;

CREATE OR REPLACE FUNCTION ml.opt_number(options jsonb, key text, lo float8, hi float8) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE v jsonb := options -> key;
BEGIN
  IF v IS NULL THEN RETURN; END IF;
  IF jsonb_typeof(v) <> 'number' OR (v #>> '{}')::float8 < lo OR (v #>> '{}')::float8 > hi THEN
    PERFORM ml.invalid(format('option "%s" must be a number between %s and %s (got "%s")', key, lo, hi, ml.show_value(v)));
  END IF;
END $$;

CREATE OR REPLACE FUNCTION ml.opt_bool(options jsonb, key text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE v jsonb := options -> key;
BEGIN
  IF v IS NOT NULL AND jsonb_typeof(v) <> 'boolean' THEN
    PERFORM ml.invalid(format('option "%s" must be true or false (got "%s")', key, ml.show_value(v)));
  END IF;
END $$;

CREATE OR REPLACE FUNCTION ml.opt_enum(options jsonb, key text, allowed text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE v jsonb := options -> key;
BEGIN
  IF v IS NOT NULL AND (jsonb_typeof(v) <> 'string' OR NOT lower(v #>> '{}') = ANY (allowed)) THEN
    PERFORM ml.invalid(format('option "%s" must be one of %s (got "%s")', key, array_to_string(allowed, ', '), ml.show_value(v)));
  END IF;
END $$;

CREATE OR REPLACE FUNCTION ml.opt_name_list(options jsonb, key text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE v jsonb := options -> key;
BEGIN
  IF v IS NULL OR jsonb_typeof(v) = 'string' THEN RETURN; END IF;
  IF jsonb_typeof(v) <> 'array' OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
    PERFORM ml.invalid(format('option "%s" must be a column name or an array of column names (got %s)', key, v::text));
  END IF;
END $$;

-- num_clusters: an integer 2..1000 (BigQuery ML stops at 100; fine-grained segmentations and the
-- scaling benchmark's k = 128 go beyond), "auto" (= range 2..10, BigQuery ML's default tuning
-- range), {"range": [lo, hi]} or {"candidates": [k1, k2, ...]}; a sweep's k in 2..100.
CREATE OR REPLACE FUNCTION ml.opt_num_clusters(options jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  v jsonb := options -> 'num_clusters';
  shape text := 'an integer between 2 and 1000, "auto", {"range": [lo, hi]} or {"candidates": [k1, k2, ...]} with each k of a sweep between 2 and 100';
  bad boolean := false;
BEGIN
  IF v IS NULL OR jsonb_typeof(v) = 'number' THEN
    PERFORM ml.opt_int(options, 'num_clusters', 2, 1000);
    RETURN;
  END IF;
  IF jsonb_typeof(v) = 'string' THEN
    bad := lower(v #>> '{}') <> 'auto';
  ELSIF jsonb_typeof(v) = 'object' AND (SELECT count(*) FROM jsonb_object_keys(v)) = 1 AND v ? 'range' THEN
    bad := jsonb_typeof(v -> 'range') <> 'array' OR jsonb_array_length(v -> 'range') <> 2
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(v -> 'range') e
                    WHERE jsonb_typeof(e) <> 'number' OR (e #>> '{}')::numeric NOT IN (SELECT generate_series(2, 100)))
        OR ((v -> 'range' ->> 0)::numeric >= (v -> 'range' ->> 1)::numeric);
  ELSIF jsonb_typeof(v) = 'object' AND (SELECT count(*) FROM jsonb_object_keys(v)) = 1 AND v ? 'candidates' THEN
    bad := jsonb_typeof(v -> 'candidates') <> 'array' OR jsonb_array_length(v -> 'candidates') = 0
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(v -> 'candidates') e
                    WHERE jsonb_typeof(e) <> 'number' OR (e #>> '{}')::numeric NOT IN (SELECT generate_series(2, 100)))
        OR (SELECT count(DISTINCT e) <> count(*) FROM jsonb_array_elements(v -> 'candidates') e);
  ELSE
    bad := true;
  END IF;
  IF bad THEN
    PERFORM ml.invalid(format('option "num_clusters" must be %s (got %s)', shape, v::text));
  END IF;
END $$;

-- The options of kmeans and hdbscan, and those every model type shares (validate_options gives
-- the supervised validator only those). Returns them in canonical form: enum values
-- lower-cased, "ignore" folded into "exclude" (an array), so the sidecar reads one spelling.
-- batch_size: streaming k-means (fitted on a uniform sample, then moved by mini-batches over
-- every row), so that the training set may be larger than the sidecar's memory.
CREATE OR REPLACE FUNCTION ml.validate_clustering_options(model_type text, options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  known text[];
  k text;
  o jsonb := options;
  excl jsonb;
BEGIN
  IF options IS NULL THEN RETURN '{}'::jsonb; END IF;
  IF jsonb_typeof(options) <> 'object' THEN
    PERFORM ml.invalid(format('options must be a JSON object such as ''{"num_clusters": 4}'' (got %s)', options::text));
  END IF;
  known := ARRAY['exclude', 'ignore', 'max_categories', 'function_name', 'seed', 'max_runtime'];
  IF model_type IN ('kmeans', 'hdbscan') THEN
    known := known || ARRAY['distance_type', 'standardize_features', 'output_table'];
  END IF;
  IF model_type = 'hdbscan' THEN
    known := known || ARRAY['min_cluster_size', 'min_samples', 'cluster_selection_method', 'cluster_selection_epsilon'];
  END IF;
  IF model_type = 'kmeans' THEN
    known := known || ARRAY['num_clusters', 'kmeans_init_method', 'kmeans_init_col', 'max_iterations', 'early_stop', 'min_rel_progress',
                            'warm_start', 'n_init', 'hparam_tuning_objective', 'stable_ids', 'stability_runs', 'batch_size'];
  END IF;
  IF model_type = 'kmeans' AND options ? 'batch_size' THEN
    PERFORM ml.opt_int(options, 'batch_size', 1000, 10000000);
    IF options ? 'num_clusters' AND jsonb_typeof(options -> 'num_clusters') <> 'number' THEN
      PERFORM ml.invalid('"batch_size" (streaming) trains one k: give one num_clusters, or choose k on a sample of the rows first');
    END IF;
    FOREACH k IN ARRAY ARRAY['warm_start', 'output_table', 'kmeans_init_col'] LOOP
      IF options ? k THEN
        PERFORM ml.invalid(format('option "%s" cannot be combined with "batch_size" (streaming mode) yet; remove one of them', k));
      END IF;
    END LOOP;
  END IF;
  FOR k IN SELECT jsonb_object_keys(options) LOOP
    IF NOT k = ANY (known) THEN
      PERFORM ml.invalid(format('unknown option "%s" for model_type %s; allowed options: %s',
                                k, model_type, array_to_string(known, ', ')));
    END IF;
  END LOOP;

  PERFORM ml.opt_name_list(o, 'exclude');
  PERFORM ml.opt_name_list(o, 'ignore');
  PERFORM ml.opt_int(o, 'max_categories', 1, 100000);
  PERFORM ml.opt_int(o, 'seed', 0, 2147483647);
  PERFORM ml.opt_int(o, 'max_runtime', 1, 604800);   -- seconds, as Redshift ML's MAX_RUNTIME
  IF o ? 'function_name' THEN
    IF jsonb_typeof(o -> 'function_name') <> 'string' THEN
      PERFORM ml.invalid(format('option "function_name" must be a string (got %s)', (o -> 'function_name')::text));
    END IF;
    PERFORM ml.check_identifier('function_name', o ->> 'function_name', 63);
  END IF;

  IF model_type IN ('kmeans', 'hdbscan') THEN
    PERFORM ml.opt_enum(o, 'distance_type', ARRAY['euclidean', 'cosine']);
    PERFORM ml.opt_bool(o, 'standardize_features');
    IF o ? 'output_table' AND (jsonb_typeof(o -> 'output_table') <> 'string'
        OR (o ->> 'output_table') !~ '^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$') THEN
      PERFORM ml.invalid(format('option "output_table" must be a table name such as "customer_segmentation" or "analytics.customer_segmentation" (got %s)', (o -> 'output_table')::text));
    END IF;
    IF o ? 'distance_type' THEN o := jsonb_set(o, '{distance_type}', to_jsonb(lower(o ->> 'distance_type'))); END IF;
  END IF;

  IF model_type = 'hdbscan' THEN
    PERFORM ml.opt_int(o, 'min_cluster_size', 2, 10000000);
    PERFORM ml.opt_int(o, 'min_samples', 1, 10000000);
    PERFORM ml.opt_enum(o, 'cluster_selection_method', ARRAY['eom', 'leaf']);
    PERFORM ml.opt_number(o, 'cluster_selection_epsilon', 0, 1e300);
    IF o ? 'cluster_selection_method' THEN
      o := jsonb_set(o, '{cluster_selection_method}', to_jsonb(lower(o ->> 'cluster_selection_method')));
    END IF;
  END IF;

  IF model_type = 'kmeans' THEN
    PERFORM ml.opt_num_clusters(o);
    PERFORM ml.opt_enum(o, 'hparam_tuning_objective', ARRAY['davies_bouldin_index', 'silhouette_score', 'calinski_harabasz_score', 'elbow']);
    PERFORM ml.opt_bool(o, 'stable_ids');
    PERFORM ml.opt_int(o, 'stability_runs', 0, 100);
    IF jsonb_typeof(o -> 'num_clusters') IN ('string', 'object')
       AND (lower(o ->> 'kmeans_init_method') = 'custom' OR (o -> 'warm_start') = 'true'::jsonb) THEN
      PERFORM ml.invalid('a num_clusters sweep cannot use "kmeans_init_method": "custom" or "warm_start" (both fix k); give one num_clusters');
    END IF;
    PERFORM ml.opt_enum(o, 'kmeans_init_method', ARRAY['kmeans++', 'random', 'custom']);
    PERFORM ml.opt_int(o, 'max_iterations', 1, 10000);
    PERFORM ml.opt_bool(o, 'early_stop');
    PERFORM ml.opt_number(o, 'min_rel_progress', 0, 1);
    PERFORM ml.opt_bool(o, 'warm_start');
    PERFORM ml.opt_int(o, 'n_init', 1, 100);
    IF o ? 'kmeans_init_col' AND jsonb_typeof(o -> 'kmeans_init_col') <> 'string' THEN
      PERFORM ml.invalid(format('option "kmeans_init_col" must be a column name (got %s)', (o -> 'kmeans_init_col')::text));
    END IF;
    IF lower(o ->> 'kmeans_init_method') = 'custom' AND NOT o ? 'kmeans_init_col' THEN
      PERFORM ml.invalid('option "kmeans_init_method" = custom needs option "kmeans_init_col": a boolean column whose true rows are the initial centroids');
    END IF;
    IF o ? 'kmeans_init_col' AND lower(coalesce(o ->> 'kmeans_init_method', '')) <> 'custom' THEN
      PERFORM ml.invalid('option "kmeans_init_col" is only allowed with "kmeans_init_method": "custom"');
    END IF;
    FOREACH k IN ARRAY ARRAY['kmeans_init_method', 'hparam_tuning_objective'] LOOP
      IF o ? k THEN o := jsonb_set(o, ARRAY[k], to_jsonb(lower(o ->> k))); END IF;
    END LOOP;
  END IF;

  -- "ignore" (SQL-inf's word) and "exclude" mean the same; keep one array.
  excl := '[]'::jsonb;
  FOREACH k IN ARRAY ARRAY['exclude', 'ignore'] LOOP
    IF o ? k THEN
      excl := excl || CASE WHEN jsonb_typeof(o -> k) = 'string' THEN jsonb_build_array(o -> k) ELSE o -> k END;
    END IF;
  END LOOP;
  o := o - 'ignore';
  IF excl <> '[]'::jsonb THEN o := jsonb_set(o, '{exclude}', excl); END IF;
  RETURN o;
END $$;

CREATE OR REPLACE FUNCTION ml.supervised_types() RETURNS text[] LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT ARRAY['linear_reg', 'logistic_reg', 'boosted_tree_regressor', 'boosted_tree_classifier',
               'random_forest_regressor', 'random_forest_classifier', 'auto']
$$;

CREATE OR REPLACE FUNCTION ml.metric_names(kind text) RETURNS text[] LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT CASE kind
    WHEN 'regression' THEN ARRAY['r2_score', 'explained_variance', 'mean_absolute_error', 'mean_squared_error',
                                 'mean_squared_log_error', 'median_absolute_error']
    ELSE ARRAY['roc_auc', 'precision', 'recall', 'accuracy', 'f1_score', 'log_loss'] END
$$;

CREATE OR REPLACE FUNCTION ml.validate_supervised_options(model_type text, options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  o jsonb := options;
  known text[] := ARRAY['exclude', 'ignore', 'max_categories', 'function_name', 'seed', 'max_runtime',
                        'input_label_cols', 'target', 'data_split_method', 'data_split_eval_fraction', 'data_split_col',
                        'category_encoding_method'];
  classifier boolean := model_type IN ('logistic_reg', 'boosted_tree_classifier', 'random_forest_classifier', 'auto');
  k text;
  v jsonb;
BEGIN
  IF classifier THEN known := known || ARRAY['class_weights', 'auto_class_weights', 'max_classes']; END IF;
  -- max_classes: a classifier's bound on distinct labels (checked when the labels are read)
  IF options ? 'max_classes' AND NOT classifier THEN
    PERFORM ml.invalid(format('option "max_classes" applies to classifiers (and auto), not to %s', model_type));
  END IF;
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
  PERFORM ml.opt_int(o, 'max_classes', 2, 100000);
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

CREATE OR REPLACE FUNCTION ml.validate_options(model_type text, options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
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

-- Name, type and options of a training request, checked; returns the canonical options.
CREATE OR REPLACE FUNCTION ml.validate_request(p_model text, p_type text, p_options jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  mtype text := lower(trim(p_type));
  opts jsonb;
  fn text;
BEGIN
  PERFORM ml.check_identifier('model name', p_model);
  IF mtype IS NULL OR NOT mtype = ANY (ARRAY['kmeans', 'hdbscan'] || ml.supervised_types()) THEN
    PERFORM ml.invalid(format('unknown model_type "%s"; supported: %s', p_type,
                              array_to_string(ARRAY['kmeans', 'hdbscan'] || ml.supervised_types(), ', ')));
  END IF;
  opts := ml.validate_options(mtype, p_options);
  fn := coalesce(opts ->> 'function_name', p_model || '_predict');
  IF mtype IN ('logistic_reg', 'boosted_tree_classifier', 'random_forest_classifier', 'auto') AND octet_length(fn) > 49 THEN
    PERFORM ml.invalid(format('function name "%s" is too long for a classifier: "%s_probabilities" must fit in 63 bytes; set option "function_name" to a shorter name', fn, fn));
  END IF;
  RETURN opts;
END $$;

-- output_table: [schema, table]; unqualified names go to the API schema.
CREATE OR REPLACE FUNCTION ml.output_table_name(opts jsonb) RETURNS text[] LANGUAGE sql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT CASE WHEN opts ->> 'output_table' IS NULL THEN NULL
              WHEN strpos(opts ->> 'output_table', '.') > 0 THEN string_to_array(opts ->> 'output_table', '.')
              ELSE ARRAY[(SELECT value FROM ml.settings WHERE key = 'api_schema'), opts ->> 'output_table'] END
$$;

-- An output_table goes where its requester may create tables, never into a temporary or a
-- system schema, and never over a table that sqlml did not write for this model.
CREATE OR REPLACE FUNCTION ml.check_output_table(p_requester name, p_model text, opts jsonb) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  t text[] := ml.output_table_name(opts);
  nsp oid;
  rel oid;
BEGIN
  IF t IS NULL THEN RETURN; END IF;
  IF t[1] ~ '^pg_' OR t[1] IN ('information_schema', 'ml') OR t[1] ~ '^ml_q_' THEN
    PERFORM ml.invalid(format('option "output_table" cannot name a table in schema "%s"; use a schema of your own, e.g. "analytics.%s"', t[1], t[2]));
  END IF;
  nsp := to_regnamespace(quote_ident(t[1]));
  IF nsp IS NULL THEN
    PERFORM ml.invalid(format('option "output_table": schema "%s" does not exist', t[1]));
  END IF;
  IF NOT has_schema_privilege(p_requester, nsp, 'CREATE') THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('option "output_table": role "%s" may not create tables in schema "%s"', p_requester, t[1]),
      HINT = format('GRANT CREATE ON SCHEMA %I TO %I; or choose another schema', t[1], p_requester);
  END IF;
  SELECT c.oid INTO rel FROM pg_class c WHERE c.relnamespace = nsp AND c.relname = t[2];
  IF rel IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ml.output_tables o WHERE o.relid = rel AND o.model_name = p_model AND o.owner = p_requester) THEN
    PERFORM ml.invalid(format('option "output_table": %I.%I already exists (owner "%s") and was not written by sqlml for model "%s"; choose another name or drop it',
                              t[1], t[2], (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = rel), p_model));
  END IF;
END $$;
