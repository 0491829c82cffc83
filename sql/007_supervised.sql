-- 007: supervised models (linear_reg, logistic_reg, boosted_tree_*, random_forest_*, auto):
-- where their generated functions are recorded (and dropped, and granted), their options,
-- and ml_create_model accepting them. 008 scores and evaluates them, 009 explains them.

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
