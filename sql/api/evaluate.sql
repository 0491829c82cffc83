-- ml_evaluate (training-time metrics, or scored on a query), the ROC curve and the confusion matrix.

-- The evaluated rows of a supervised model on a query: label y and scores p, labelled rows only.
CREATE OR REPLACE FUNCTION ml.labelled_scores_sql(t ml.trials, q text, y_type text) RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT format('SELECT (q.%1$I)::%2$s AS y, %3$s(%4$s) AS p FROM (%5$s) q WHERE q.%1$I IS NOT NULL OFFSET 0',
                ml.label_column(t.artifact), y_type, t.scores_function, ml.feature_arguments(t.artifact), q)
$$;

-- Raised when the query lacks the label column.
CREATE OR REPLACE FUNCTION ml.require_label(m ml.models, t ml.trials, q text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('SELECT q.%I FROM (%s) q LIMIT 0', ml.label_column(t.artifact), q);
EXCEPTION WHEN undefined_column THEN
  RAISE EXCEPTION USING ERRCODE = '42703',
    MESSAGE = format('the query has no column "%s", the label model "%s" was trained to predict; evaluation needs the true values', ml.label_column(t.artifact), m.model_name);
END $$;

-- 009: what a supervised model is judged and explained by: ml_roc_curve, ml_confusion_matrix,
-- ml_feature_importance, ml_explain_predict (exact for linear models, TreeSHAP in PL/pgSQL for
-- trees) and ml_global_explain.

CREATE OR REPLACE FUNCTION ml.require_supervised(m ml.models, t ml.trials, what text, binary_only boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, ml, pg_temp AS $$
BEGIN
  IF NOT t.artifact ? 'problem' OR (t.artifact ->> 'problem' = 'regression' AND what <> 'ml_feature_importance') THEN
    PERFORM ml.invalid(format('%s needs a classification model; "%s" is a %s model', what, m.model_name, coalesce(t.artifact ->> 'problem', m.model_type)));
  END IF;
  IF binary_only AND t.artifact ->> 'problem' <> 'binary' THEN
    PERFORM ml.invalid(format('%s is for binary classification (BigQuery ML''s ML.ROC_CURVE too); "%s" has %s classes; see ml_confusion_matrix',
                              what, m.model_name, jsonb_array_length(t.artifact -> 'classes')));
  END IF;
END $$;

-- log_likelihood .. spend_mean_absolute_error were added for clv models (a changed result type
-- needs the DROP).
DO $$ DECLARE f regprocedure := to_regprocedure(format('%I.ml_evaluate(text,text,jsonb)', @api_name@));
BEGIN
  IF f IS NOT NULL AND pg_get_function_result(f) NOT LIKE '%spend_mean_absolute_error%' THEN
    DROP FUNCTION @api@.ml_evaluate(text, text, jsonb);
  END IF;
END $$;
CREATE OR REPLACE FUNCTION @api@.ml_evaluate(model_name text, query text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE (trial_id int, davies_bouldin_index float8, mean_squared_distance float8,
               silhouette_score float8, calinski_harabasz_score float8, stability float8,
               num_clusters int, noise_fraction float8, dbcv float8,
               mean_absolute_error float8, mean_squared_error float8, mean_squared_log_error float8,
               median_absolute_error float8, r2_score float8, explained_variance float8,
               "precision" float8, recall float8, accuracy float8, f1_score float8, log_loss float8, roc_auc float8,
               log_likelihood float8, bic float8, expected_holdout_purchases float8, actual_holdout_purchases float8,
               spend_mean_absolute_error float8)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options, ARRAY['threshold']);
  q text := ml.safe_query(ml.strip_query(query));
  threshold float8 := ml.threshold_option(t, options);
  mt jsonb := t.metrics;
BEGIN
  IF query IS NULL AND NOT options ? 'threshold' THEN
    RETURN QUERY SELECT t.trial_id, (mt ->> 'davies_bouldin_index')::float8, (mt ->> 'mean_squared_distance')::float8,
                        (mt ->> 'silhouette_score')::float8, (mt ->> 'calinski_harabasz_score')::float8,
                        (mt ->> 'stability')::float8, (mt ->> 'num_clusters')::int,
                        (mt ->> 'noise_fraction')::float8, (mt ->> 'dbcv')::float8,
                        (mt ->> 'mean_absolute_error')::float8, (mt ->> 'mean_squared_error')::float8,
                        (mt ->> 'mean_squared_log_error')::float8, (mt ->> 'median_absolute_error')::float8,
                        (mt ->> 'r2_score')::float8, (mt ->> 'explained_variance')::float8,
                        (mt ->> 'precision')::float8, (mt ->> 'recall')::float8, (mt ->> 'accuracy')::float8,
                        (mt ->> 'f1_score')::float8, (mt ->> 'log_loss')::float8, (mt ->> 'roc_auc')::float8,
                        (mt ->> 'log_likelihood')::float8, (mt ->> 'bic')::float8, (mt ->> 'expected_holdout_purchases')::float8,
                        (mt ->> 'actual_holdout_purchases')::float8, (mt ->> 'spend_mean_absolute_error')::float8;
    RETURN;
  END IF;
  IF query IS NULL THEN
    PERFORM ml.invalid('option "threshold" needs a query to score: ml_evaluate(model, query, ''{"threshold": 0.3}'')');
  END IF;
  IF t.artifact ->> 'problem' = 'regression' THEN
    PERFORM ml.require_label(m, t, q);
    RETURN QUERY EXECUTE format($q$
      WITH s AS (SELECT y, p[1] AS p FROM (%1$s) x)
      SELECT %2$s, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::int, NULL::float8, NULL::float8,
             avg(abs(y - p)), avg((y - p) ^ 2),
             CASE WHEN min(least(y, p)) >= 0 THEN avg(CASE WHEN y >= 0 AND p >= 0 THEN (ln(1 + y) - ln(1 + p)) ^ 2 END) END,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(y - p)),
             coalesce(1 - sum((y - p) ^ 2) / nullif(count(*) * var_pop(y), 0), 0),
             coalesce(1 - var_pop(y - p) / nullif(var_pop(y), 0), 0),
             NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8
      FROM s
    $q$, ml.labelled_scores_sql(t, q, 'float8'), t.trial_id);
    RETURN;
  ELSIF t.artifact ? 'problem' THEN
    PERFORM ml.require_label(m, t, q);
    RETURN QUERY EXECUTE format($q$
      WITH s AS (SELECT array_position(%2$L::text[], y) AS y, p FROM (%1$s) x),
      r AS (SELECT y, p, %3$s AS yhat FROM s),
      cls AS (SELECT c::int FROM generate_series(CASE WHEN %4$s = 2 THEN 2 ELSE 1 END, %4$s) c),
      per AS (SELECT cls.c,
                     count(*) FILTER (WHERE r.y = cls.c AND r.yhat = cls.c) AS tp,
                     count(*) FILTER (WHERE r.y IS DISTINCT FROM cls.c AND r.yhat = cls.c) AS fp,
                     count(*) FILTER (WHERE r.y = cls.c AND r.yhat <> cls.c) AS fn
                FROM cls CROSS JOIN r GROUP BY cls.c),
      pr AS (SELECT CASE WHEN tp + fp > 0 THEN tp::float8 / (tp + fp) ELSE 0 END AS pre,
                    CASE WHEN tp + fn > 0 THEN tp::float8 / (tp + fn) ELSE 0 END AS rec FROM per),
      ranked AS (SELECT cls.c, coalesce(r.y = cls.c, false) AS pos,
                        rank() OVER (PARTITION BY cls.c ORDER BY r.p[cls.c])
                          + (count(*) OVER (PARTITION BY cls.c, r.p[cls.c]) - 1) / 2.0 AS rk
                   FROM cls CROSS JOIN r),
      auc AS (SELECT CASE WHEN count(*) FILTER (WHERE pos) > 0 AND count(*) FILTER (WHERE NOT pos) > 0
                          THEN (sum(rk) FILTER (WHERE pos) - count(*) FILTER (WHERE pos) * (count(*) FILTER (WHERE pos) + 1) / 2.0)
                               / (count(*) FILTER (WHERE pos)::float8 * count(*) FILTER (WHERE NOT pos))
                          ELSE 0.5 END AS a
                FROM ranked GROUP BY c)
      SELECT %5$s, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::int, NULL::float8, NULL::float8,
             NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
             (SELECT avg(pre) FROM pr), (SELECT avg(rec) FROM pr),
             (SELECT avg(coalesce(y = yhat, false)::int)::float8 FROM r),
             (SELECT avg(CASE WHEN pre + rec > 0 THEN 2 * pre * rec / (pre + rec) ELSE 0 END) FROM pr),
             (SELECT avg(-ln(greatest(least(coalesce(p[y], 0), 1 - 1e-15), 1e-15))) FROM r),
             (SELECT avg(a)::float8 FROM auc), NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8
    $q$, ml.labelled_scores_sql(t, q, 'text'), ml.class_labels(t.artifact), ml.predicted_class_sql(t.artifact, 'p'),
         jsonb_array_length(t.artifact -> 'classes'), t.trial_id)
    USING threshold;
    RETURN;
  END IF;
  IF m.model_type <> 'kmeans' THEN
    PERFORM ml.invalid(format('ml_evaluate with a query is available for kmeans and supervised models; for %s models call ml_evaluate(''%s'') for the training metrics', m.model_type, model_name));
  END IF;
  RETURN QUERY EXECUTE format($q$
    WITH a AS (
      SELECT n.c, n.v
      FROM (SELECT %1$s(%2$s) AS d FROM (%3$s) q OFFSET 0) s
      CROSS JOIN LATERAL (SELECT i::int AS c, v FROM unnest(s.d) WITH ORDINALITY AS x(v, i) ORDER BY v, i LIMIT 1) n),
    per AS (SELECT c, avg(v) AS spread FROM a GROUP BY c),
    r AS (SELECT p.c, max((p.spread + o.spread) / ((%4$L::jsonb -> (p.c - 1) ->> (o.c - 1))::float8)) AS ratio
            FROM per p JOIN per o ON o.c <> p.c GROUP BY p.c)
    SELECT %5$s, (SELECT avg(ratio) FROM r)::float8, (SELECT avg(v * v) FROM a)::float8, NULL::float8, NULL::float8, NULL::float8,
           (SELECT count(*) FROM per)::int, 0::float8, NULL::float8,
           NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
           NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8
  $q$, t.scores_function, ml.feature_arguments(t.artifact), q, t.artifact -> 'centroid_distances', t.trial_id);
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_evaluate(text, text, jsonb) IS
  'sqlml: one row of BigQuery ML metrics: clustering (davies_bouldin_index, ...), regression (mean_absolute_error .. explained_variance), classification (precision .. roc_auc) or clv (log_likelihood, bic; with a holdout mean_absolute_error of purchases per customer, expected and actual holdout purchases, spend error); training-time metrics, or scored on a query';

-- BigQuery ML's ML.ROC_CURVE: without a query, the curve on the evaluation split computed at
-- training time; with one, on its rows, at the given thresholds or the percentiles 0..100 of
-- the positive class's probability.
CREATE OR REPLACE FUNCTION @api@.ml_roc_curve(model_name text, query text DEFAULT NULL, thresholds float8[] DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE (threshold float8, recall float8, false_positive_rate float8, true_positives bigint,
               false_positives bigint, true_negatives bigint, false_negatives bigint)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options);
  q text := ml.safe_query(ml.strip_query(query));
BEGIN
  PERFORM ml.require_supervised(m, t, 'ml_roc_curve', true);
  IF query IS NULL THEN
    IF thresholds IS NOT NULL THEN
      PERFORM ml.invalid('thresholds need a query to score: ml_roc_curve(model, query, ARRAY[0.2, 0.5, 0.8])');
    END IF;
    RETURN QUERY SELECT (e ->> 'threshold')::float8, (e ->> 'recall')::float8, (e ->> 'false_positive_rate')::float8,
                        (e ->> 'true_positives')::bigint, (e ->> 'false_positives')::bigint,
                        (e ->> 'true_negatives')::bigint, (e ->> 'false_negatives')::bigint
                 FROM jsonb_array_elements(t.artifact -> 'evaluation' -> 'roc_curve') e;
    RETURN;
  END IF;
  PERFORM ml.require_label(m, t, q);
  RETURN QUERY EXECUTE format($q$
    WITH s AS (SELECT coalesce(y = %2$L, false) AS pos, p[2] AS p FROM (%1$s) x),
    th AS (SELECT DISTINCT v FROM unnest(coalesce($1, (SELECT percentile_disc(ARRAY(SELECT g / 100.0 FROM generate_series(0, 100) g)::float8[])
                                                        WITHIN GROUP (ORDER BY p) FROM s))) v),
    tot AS (SELECT count(*) FILTER (WHERE pos) AS pp, count(*) FILTER (WHERE NOT pos) AS nn FROM s)
    SELECT th.v, CASE WHEN tot.pp > 0 THEN c.tp::float8 / tot.pp ELSE 0 END, CASE WHEN tot.nn > 0 THEN c.fp::float8 / tot.nn ELSE 0 END,
           c.tp, c.fp, tot.nn - c.fp, tot.pp - c.tp
    FROM th CROSS JOIN tot
    CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE s.p >= th.v AND s.pos) AS tp, count(*) FILTER (WHERE s.p >= th.v AND NOT s.pos) AS fp FROM s) c
    ORDER BY th.v DESC
  $q$, ml.labelled_scores_sql(t, q, 'text'), (ml.class_labels(t.artifact))[2]) USING thresholds;
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_roc_curve(text, text, float8[], jsonb) IS
  'sqlml: per threshold: recall, false_positive_rate and the confusion counts of a binary classifier (evaluation split, or a query)';

-- ML.CONFUSION_MATRIX in long form (one row per expected and predicted label; a SQL function
-- cannot return one column per class): every pair of classes, zeros included.
CREATE OR REPLACE FUNCTION @api@.ml_confusion_matrix(model_name text, query text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE (expected_label text, predicted_label text, count bigint)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options, ARRAY['threshold']);
  q text := ml.safe_query(ml.strip_query(query));
  threshold float8 := ml.threshold_option(t, options);
  labels text[];
BEGIN
  PERFORM ml.require_supervised(m, t, 'ml_confusion_matrix');
  labels := ml.class_labels(t.artifact);
  IF query IS NULL THEN
    IF options ? 'threshold' THEN
      PERFORM ml.invalid('option "threshold" needs a query to score');
    END IF;
    RETURN QUERY SELECT labels[e.i::int], labels[p.j::int], (p.v #>> '{}')::bigint
                 FROM jsonb_array_elements(t.artifact -> 'evaluation' -> 'confusion_matrix') WITH ORDINALITY e(r, i)
                 CROSS JOIN LATERAL jsonb_array_elements(e.r) WITH ORDINALITY p(v, j)
                 ORDER BY e.i, p.j;
    RETURN;
  END IF;
  PERFORM ml.require_label(m, t, q);
  RETURN QUERY EXECUTE format($q$
    WITH r AS (SELECT y, (%2$L::text[])[%3$s] AS yhat FROM (%1$s) x),
    counts AS (SELECT y, yhat, count(*) AS n FROM r GROUP BY y, yhat)
    SELECT e.l, p.l, coalesce(c.n, 0)
      FROM unnest(%2$L::text[]) WITH ORDINALITY e(l, i) CROSS JOIN unnest(%2$L::text[]) WITH ORDINALITY p(l, j)
      LEFT JOIN counts c ON c.y = e.l AND c.yhat = p.l
    UNION ALL
    SELECT c.y, c.yhat, c.n FROM counts c WHERE NOT c.y = ANY (%2$L::text[])
  $q$, ml.labelled_scores_sql(t, q, 'text'), labels, ml.predicted_class_sql(t.artifact, 'x.p')) USING threshold;
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_confusion_matrix(text, text, jsonb) IS
  'sqlml: rows (expected_label, predicted_label, count) for every pair of classes (evaluation split, or a query)';

-- Chart-ready data for BI tools (the report draws the same): score deciles and what lift, gain
-- and calibration charts read from them, precision-recall, predicted against actual.

-- The rows split into ten groups by descending score (ntile(10)): the positive class's
-- probability and whether the row is positive (binary), or the prediction and the label
-- (regression). Without a query, the deciles of the evaluation split kept at training time.
CREATE OR REPLACE FUNCTION ml.score_deciles(m ml.models, t ml.trials, q text, what text)
RETURNS TABLE (decile int, rows bigint, min_score float8, max_score float8, mean_score float8, mean_actual float8)
LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(t.artifact ->> 'problem', '') NOT IN ('binary', 'regression') OR (what = 'ml_lift_curve' AND t.artifact ->> 'problem' <> 'binary') THEN
    PERFORM ml.invalid(format('%s is for %s models; "%s" is a %s model', what,
                              CASE WHEN what = 'ml_lift_curve' THEN 'binary classification' ELSE 'binary classification and regression' END,
                              m.model_name, coalesce(t.artifact ->> 'problem', m.model_type)));
  END IF;
  IF q IS NULL THEN
    IF NOT t.artifact -> 'evaluation' ? 'deciles' THEN
      PERFORM ml.invalid(format('model "%s" version %s kept no evaluation deciles (no evaluation split, or trained before they were kept); pass a query with the label column "%s"',
                                m.model_name, m.version, ml.label_column(t.artifact)));
    END IF;
    RETURN QUERY SELECT (e ->> 'decile')::int, (e ->> 'rows')::bigint, (e ->> 'min_score')::float8, (e ->> 'max_score')::float8,
                        (e ->> 'mean_score')::float8, (e ->> 'mean_actual')::float8
                   FROM jsonb_array_elements(t.artifact -> 'evaluation' -> 'deciles') e ORDER BY 1;
    RETURN;
  END IF;
  PERFORM ml.require_label(m, t, q);
  RETURN QUERY EXECUTE format($q$
    WITH s AS (SELECT %2$s AS a, %3$s AS p FROM (%1$s) x),
    g AS (SELECT ntile(10) OVER (ORDER BY p DESC) AS d, a, p FROM s)
    SELECT d, count(*), min(p), max(p), avg(p), avg(a) FROM g GROUP BY d ORDER BY d
  $q$, ml.labelled_scores_sql(t, q, CASE WHEN t.artifact ->> 'problem' = 'binary' THEN 'text' ELSE 'float8' END),
       CASE WHEN t.artifact ->> 'problem' = 'binary' THEN format('coalesce(y = %L, false)::int::float8', (ml.class_labels(t.artifact))[2]) ELSE 'y' END,
       CASE WHEN t.artifact ->> 'problem' = 'binary' THEN 'p[2]' ELSE 'p[1]' END);
END $$;

-- Lift and cumulative gain by decile (highest scores first): the response rate of each tenth,
-- its ratio to the overall rate, and the share of all positives found up to that tenth.
CREATE OR REPLACE FUNCTION @api@.ml_lift_curve(model_name text, query text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE (decile int, rows bigint, min_score float8, max_score float8, response_rate float8, lift float8,
               cumulative_rows bigint, cumulative_response_rate float8, cumulative_lift float8, cumulative_gain float8)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options);
  q text := ml.safe_query(ml.strip_query(query));
BEGIN
  RETURN QUERY
    WITH d AS (SELECT * FROM ml.score_deciles(m, t, q, 'ml_lift_curve')),
    c AS (SELECT d.*, d.mean_actual * d.rows AS positives,
                 sum(d.rows) OVER w AS cum_rows, sum(d.mean_actual * d.rows) OVER w AS cum_pos,
                 sum(d.rows) OVER () AS all_rows, sum(d.mean_actual * d.rows) OVER () AS all_pos
            FROM d WINDOW w AS (ORDER BY d.decile))
    SELECT c.decile, c.rows, c.min_score, c.max_score, c.mean_actual,
           c.mean_actual / nullif(c.all_pos / c.all_rows, 0),
           c.cum_rows::bigint, (c.cum_pos / c.cum_rows)::float8,
           ((c.cum_pos / c.cum_rows) / nullif(c.all_pos / c.all_rows, 0))::float8,
           (c.cum_pos / nullif(c.all_pos, 0))::float8
      FROM c ORDER BY c.decile;
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_lift_curve(text, text, jsonb) IS
  'sqlml: per decile of a binary classifier''s score (highest first): response rate, lift, cumulative response rate, lift and gain (evaluation split, or a query)';

-- Calibration: per decile (lowest scores first) the mean prediction against what happened
-- (the positive rate, or the mean label of a regression).
CREATE OR REPLACE FUNCTION @api@.ml_calibration_curve(model_name text, query text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE (bin int, rows bigint, mean_predicted float8, observed float8, min_score float8, max_score float8)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options);
  q text := ml.safe_query(ml.strip_query(query));
BEGIN
  RETURN QUERY
    SELECT (11 - d.decile)::int, d.rows, d.mean_score, d.mean_actual, d.min_score, d.max_score
      FROM ml.score_deciles(m, t, q, 'ml_calibration_curve') d ORDER BY d.decile DESC;
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_calibration_curve(text, text, jsonb) IS
  'sqlml: per decile of the score (lowest first): mean predicted probability or value against the observed positive rate or mean label (evaluation split, or a query)';

-- Precision-recall from the ROC curve's confusion counts, at the same thresholds.
CREATE OR REPLACE FUNCTION @api@.ml_pr_curve(model_name text, query text DEFAULT NULL, thresholds float8[] DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE (threshold float8, "precision" float8, recall float8, true_positives bigint, false_positives bigint)
LANGUAGE sql AS $$
  SELECT r.threshold, CASE WHEN r.true_positives + r.false_positives > 0 THEN r.true_positives::float8 / (r.true_positives + r.false_positives) ELSE 1 END,
         r.recall, r.true_positives, r.false_positives
    FROM @api@.ml_roc_curve(model_name, query, thresholds, options) r
$$;
COMMENT ON FUNCTION @api@.ml_pr_curve(text, text, float8[], jsonb) IS
  'sqlml: per threshold: precision and recall of a binary classifier (evaluation split, or a query); precision is 1 where nothing is predicted positive';

-- Predicted against actual for a regression's scatter: the rows of a query (option max_rows: a
-- random sample of them).
CREATE OR REPLACE FUNCTION @api@.ml_predicted_vs_actual(model_name text, query text, options jsonb DEFAULT '{}')
RETURNS TABLE (actual float8, predicted float8)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options, ARRAY['max_rows']);
  q text := ml.safe_query(ml.strip_query(query));
BEGIN
  PERFORM ml.opt_int(options, 'max_rows', 1, 100000000);
  IF coalesce(t.artifact ->> 'problem', '') <> 'regression' THEN
    PERFORM ml.invalid(format('ml_predicted_vs_actual is for regression models; "%s" is a %s model', m.model_name, coalesce(t.artifact ->> 'problem', m.model_type)));
  END IF;
  PERFORM ml.require_label(m, t, q);
  IF options ? 'max_rows' THEN -- sampled before scoring: only the sample runs through the model
    q := format('SELECT * FROM (%s) q WHERE q.%I IS NOT NULL ORDER BY random() LIMIT %s', q, ml.label_column(t.artifact), (options ->> 'max_rows')::int);
  END IF;
  RETURN QUERY EXECUTE format('SELECT y, p[1] FROM (%s) s', ml.labelled_scores_sql(t, q, 'float8'));
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_predicted_vs_actual(text, text, jsonb) IS
  'sqlml: actual and predicted value of every labelled row of a query (option max_rows: a random sample), for a regression''s scatter';
