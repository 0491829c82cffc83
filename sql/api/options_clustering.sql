-- The options of k-means and HDBSCAN, and those every model type shares; checked in SQL at the
-- call (see options.sql for the shared checkers).

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
  known := ml.common_option_keys();
  IF model_type IN ('kmeans', 'hdbscan') THEN
    known := known || ARRAY['distance_type', 'standardize_features', 'output_table'];
  END IF;
  IF model_type = 'hdbscan' THEN
    known := known || ARRAY['min_cluster_size', 'min_samples', 'cluster_selection_method', 'cluster_selection_epsilon'];
  END IF;
  IF model_type = 'pca' THEN
    known := known || ARRAY['num_principal_components', 'pca_explained_variance_ratio', 'scale_features'];
  END IF;
  IF model_type = 'kmeans' THEN
    known := known || ARRAY['num_clusters', 'kmeans_init_method', 'kmeans_init_col', 'max_iterations', 'early_stop', 'min_rel_progress',
                            'warm_start', 'n_init', 'hparam_tuning_objective', 'stable_ids', 'stability_runs', 'batch_size', 'training_mode'];
  END IF;
  -- training_mode in_database: fitted on a sample, then each Lloyd step over every row is one
  -- aggregate in the database (sql/api/in_database.sql, src/jobs/kmeans-in-database.ts)
  IF model_type = 'kmeans' AND options ? 'training_mode' THEN
    PERFORM ml.opt_enum(options, 'training_mode', ARRAY['in_memory', 'in_database']);
    IF lower(options ->> 'training_mode') = 'in_database' THEN
      IF jsonb_typeof(options -> 'num_clusters') IS DISTINCT FROM 'number' THEN
        PERFORM ml.invalid('"training_mode": "in_database" trains one k: give one num_clusters (choose k on a sample of the rows first)');
      END IF;
      IF (options ->> 'num_clusters')::numeric > 256 THEN
        PERFORM ml.invalid(format('"training_mode": "in_database" takes at most 256 clusters (got %s)', options ->> 'num_clusters'));
      END IF;
      FOREACH k IN ARRAY ARRAY['batch_size', 'warm_start', 'output_table', 'kmeans_init_col'] LOOP
        IF options ? k THEN
          PERFORM ml.invalid(format('option "%s" cannot be combined with "training_mode": "in_database" yet; remove one of them', k));
        END IF;
      END LOOP;
      IF lower(coalesce(options ->> 'distance_type', 'euclidean')) <> 'euclidean' THEN
        PERFORM ml.invalid('"training_mode": "in_database" measures Euclidean distance; remove "distance_type" or train in memory');
      END IF;
    END IF;
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
  PERFORM ml.opt_enum(o, 'category_overflow', ARRAY['other', 'fail']);
  PERFORM ml.opt_number(o, 'min_category_share', 0, 1);
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

  IF model_type = 'pca' THEN
    PERFORM ml.opt_int(o, 'num_principal_components', 1, 10000);
    PERFORM ml.opt_number(o, 'pca_explained_variance_ratio', 0, 1);
    PERFORM ml.opt_bool(o, 'scale_features');
    IF o ? 'num_principal_components' AND o ? 'pca_explained_variance_ratio' THEN
      PERFORM ml.invalid('give "num_principal_components" or "pca_explained_variance_ratio", not both (as BigQuery ML)');
    END IF;
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
