-- 012: one num_clusters up to 1,000. BigQuery ML stops at 100; fine-grained segmentations (and
-- the scaling benchmark's k = 128) go beyond. A sweep's candidates stay within 2..100.

ALTER FUNCTION ml.opt_num_clusters(jsonb) RENAME TO opt_num_clusters_002;

CREATE FUNCTION ml.opt_num_clusters(options jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF jsonb_typeof(options -> 'num_clusters') = 'number' THEN
    PERFORM ml.opt_int(options, 'num_clusters', 2, 1000);
  ELSE
    PERFORM ml.opt_num_clusters_002(options);
  END IF;
END $$;
