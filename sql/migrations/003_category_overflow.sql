-- 003: a categorical column with more distinct values than max_categories keeps its frequent
-- categories and pools the rest into one (other) column; feature info says how many were kept
-- and which share of the training rows fell into (other).
ALTER TABLE ml.feature_info ADD COLUMN kept_categories int, ADD COLUMN other_share float8;
