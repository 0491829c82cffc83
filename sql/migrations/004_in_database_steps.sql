-- 004: an in-database k-means job records the queries its Lloyd step aggregates (one per
-- foreign partition, or the training query) and whether the step keeps its layers apart.
ALTER TABLE ml.jobs ADD COLUMN step_queries text[], ADD COLUMN step_fenced boolean;
-- where each training iteration ran (k-means: in_memory, streaming or in_database) and the
-- bytes it brought to the sidecar
ALTER TABLE ml.training_info ADD COLUMN training_mode text, ADD COLUMN bytes_moved bigint;
