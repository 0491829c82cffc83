-- 010: streaming k-means (option batch_size): the model is fitted on a uniform sample, then
-- moved by mini-batches over every row and measured on every row, so that the training set
-- may be larger than the sidecar's memory. The option is checked here, in front of the
-- clustering options' validator of migration 002.

ALTER FUNCTION ml.validate_clustering_options(text, jsonb) RENAME TO validate_clustering_options_002;

CREATE FUNCTION ml.validate_clustering_options(model_type text, options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE k text;
BEGIN
  IF model_type <> 'kmeans' OR options IS NULL OR jsonb_typeof(options) <> 'object' OR NOT options ? 'batch_size' THEN
    RETURN ml.validate_clustering_options_002(model_type, options);
  END IF;
  PERFORM ml.opt_int(options, 'batch_size', 1000, 10000000);
  IF options ? 'num_clusters' AND jsonb_typeof(options -> 'num_clusters') <> 'number' THEN
    PERFORM ml.invalid('"batch_size" (streaming) trains one k: give one num_clusters, or choose k on a sample of the rows first');
  END IF;
  FOREACH k IN ARRAY ARRAY['warm_start', 'output_table', 'kmeans_init_col'] LOOP
    IF options ? k THEN
      PERFORM ml.invalid(format('option "%s" cannot be combined with "batch_size" (streaming mode) yet; remove one of them', k));
    END IF;
  END LOOP;
  RETURN ml.validate_clustering_options_002(model_type, options - 'batch_size') || jsonb_build_object('batch_size', options -> 'batch_size');
END $$;
