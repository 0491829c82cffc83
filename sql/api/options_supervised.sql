-- The options of the supervised model types (BigQuery ML's names), checked in SQL at the call
-- (see options.sql for the shared checkers).

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
  known text[] := ml.common_option_keys() || ARRAY['input_label_cols', 'target', 'data_split_method', 'data_split_eval_fraction', 'data_split_col',
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
