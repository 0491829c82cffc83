-- 004: an in-database k-means job records the queries its Lloyd step aggregates (one per
-- foreign partition, or the training query) and whether the step keeps its layers apart.
ALTER TABLE ml.jobs ADD COLUMN step_queries text[], ADD COLUMN step_fenced boolean;
