-- 002: the columns that name a version's internal functions say what those compute.
--   scores_function: per row, the distances to the centroids or exemplars (clustering) or the
--     prediction / class probabilities (supervised): what ml_predict and ml_evaluate call;
--   nearest_function (k-means): the ranked nearest centroids that ml_predict returns;
--   explain_function (supervised): per-feature contributions (linear) or the model-space row
--     that TreeSHAP walks (trees), for ml_explain_predict.
ALTER TABLE ml.trials RENAME COLUMN distances_function TO scores_function;
ALTER TABLE ml.trials ADD COLUMN nearest_function text;
UPDATE ml.trials t SET nearest_function = t.explain_function, explain_function = NULL
  FROM ml.models m WHERE m.id = t.model_id AND m.model_type = 'kmeans';
ALTER TABLE ml.models RENAME COLUMN distances_function TO scores_function;
