-- Customer lifetime value models (model type clv): their options, the columns resolved as the
-- requester at ml_create_model, scoring a transactions query (ml_predict), their fitted
-- parameters (ml_weights, also for linear models) and the calibration/holdout check.

CREATE OR REPLACE FUNCTION ml.validate_clv_options(options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE o jsonb := coalesce(options, '{}');
BEGIN
  IF jsonb_typeof(o) <> 'object' THEN
    PERFORM ml.invalid(format('options must be a JSON object such as ''{"time_unit": "week", "calibration_end": "1997-09-30"}'' (got %s)', o::text));
  END IF;
  PERFORM ml.check_options(o, ARRAY['customer_col', 'time_col', 'value_col', 'time_unit', 'observation_end', 'calibration_end',
                                    'purchase_model', 'spend_model', 'penalizer', 'horizon', 'discount_rate', 'seed', 'function_name']);
  PERFORM ml.check_rfm_options(o);
  PERFORM ml.opt_enum(o, 'purchase_model', ARRAY['bg_nbd', 'mbg_nbd', 'pareto_nbd', 'auto']);
  PERFORM ml.opt_enum(o, 'spend_model', ARRAY['gamma_gamma', 'none']);
  PERFORM ml.opt_number(o, 'penalizer', 0, 1000);
  PERFORM ml.opt_number(o, 'horizon', 0, 100000);
  PERFORM ml.opt_number(o, 'discount_rate', 0, 10);
  PERFORM ml.opt_int(o, 'seed', 0, 2147483647);
  IF o ? 'function_name' THEN
    IF jsonb_typeof(o -> 'function_name') <> 'string' THEN
      PERFORM ml.invalid(format('option "function_name" must be a string (got %s)', (o -> 'function_name')::text));
    END IF;
    -- the longest generated name, <function_name>_expected_purchases, must fit in 63 bytes
    PERFORM ml.check_identifier('function_name', o ->> 'function_name', 44);
  END IF;
  RETURN o;
END $$;

-- At ml_create_model, as the requester: the customer, time and value columns named (the
-- transactions query's first three by default) and checked against the query's columns.
CREATE OR REPLACE FUNCTION ml.clv_columns(query text, options jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE s record := ml.rfm_settings(query, coalesce(options, '{}'));
BEGIN
  RETURN coalesce(options, '{}') || pg_catalog.jsonb_build_object('customer_col', s.customer_col, 'time_col', s.time_col, 'value_col', s.value_col);
END $$;

-- The query a clv model's training function runs: the RFM summary of the transactions query.
CREATE OR REPLACE FUNCTION ml.clv_training_query(query text, options jsonb) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT ml.rfm_sql('(' || query || E'\n)', options ->> 'customer_col', options ->> 'time_col', options ->> 'value_col',
                    ml.time_unit_days(options ->> 'time_unit'), (options ->> 'observation_end')::date, (options ->> 'calibration_end')::date)
$$;

-- ml_predict of a clv model: the query's transactions summarised per customer (ml.rfm_sql, as at
-- training, up to the query's last transaction or option observation_end), then scored.
CREATE OR REPLACE FUNCTION ml.predict_clv(m ml.models, t ml.trials, q text, options jsonb)
RETURNS TABLE (input jsonb, centroid_id int, nearest_centroids_distance jsonb,
               membership_probability float8, outlier_score float8,
               predicted_value float8, predicted_label text, predicted_probs jsonb, details jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  a jsonb := t.artifact;
  horizon float8;
  discount float8;
  obs_end date;
  col text;
BEGIN
  PERFORM ml.opt_number(options, 'horizon', 0, 100000);
  PERFORM ml.opt_number(options, 'discount_rate', 0, 10);
  PERFORM ml.check_rfm_options(coalesce(options, '{}') - 'horizon' - 'discount_rate' - 'trial_id');
  horizon := coalesce((options ->> 'horizon')::float8, (a ->> 'horizon')::float8);
  discount := coalesce((options ->> 'discount_rate')::float8, (a ->> 'discount_rate')::float8);
  obs_end := (options ->> 'observation_end')::date;
  FOR col IN SELECT x FROM unnest(ARRAY[a ->> 'customer_col', a ->> 'time_col', a ->> 'value_col']) x WHERE x IS NOT NULL LOOP
    IF NOT EXISTS (SELECT 1 FROM ml.query_columns(q) c WHERE c.name = col) THEN
      RAISE EXCEPTION USING ERRCODE = '42703',
        MESSAGE = format('the transactions query has no column "%s", which model "%s" was trained on', col, m.model_name),
        HINT = format('the model reads %s', concat_ws(', ', a ->> 'customer_col', a ->> 'time_col', a ->> 'value_col'));
    END IF;
  END LOOP;
  RETURN QUERY EXECUTE format($q$
    SELECT to_jsonb(s.r) - 'holdout_frequency' - 'holdout_monetary_value' - 'holdout_duration',
           NULL::int, NULL::jsonb, NULL::float8, NULL::float8, s.v[4], NULL::text, NULL::jsonb,
           jsonb_build_object('p_alive', s.v[1], 'expected_purchases', s.v[2], 'expected_spend', s.v[3],
                              'horizon', $1, 'discount_rate', $2)
      FROM (SELECT r, %1$s(r.frequency, r.recency, r.age, r.monetary_value, $1, $2) AS v FROM (%2$s) r OFFSET 0) s
     ORDER BY (s.r).customer_id
  $q$, t.scores_function,
       ml.rfm_sql('(' || q || E'\n)', a ->> 'customer_col', a ->> 'time_col', a ->> 'value_col', ml.time_unit_days(a ->> 'time_unit'), obs_end, NULL))
  USING horizon, discount;
END $$;

-- BigQuery ML's ML.WEIGHTS: per processed input its weight (and per category of a one-hot
-- input, category_weights). For clv models the fitted parameters (r, alpha, a, b; p, q, gamma)
-- with their standard errors; for linear_reg / logistic_reg the coefficients on the inputs'
-- original scale (the intercept as __INTERCEPT__), per class for a multiclass model.
CREATE OR REPLACE FUNCTION @api@.ml_weights(model_name text)
RETURNS TABLE (processed_input text, weight float8, category_weights jsonb, standard_error float8, class_label text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  a jsonb := m.artifact;
BEGIN
  IF m.model_type = 'clv' THEN
    RETURN QUERY
      SELECT e.key, e.value::text::float8, NULL::jsonb, (a -> 'purchase_standard_errors' ->> e.key)::float8, 'purchases'::text
        FROM jsonb_each(a -> 'purchase') WITH ORDINALITY e(key, value, o)
      UNION ALL
      SELECT e.key, e.value::text::float8, NULL::jsonb, (a -> 'spend_standard_errors' ->> e.key)::float8, 'spend'::text
        FROM jsonb_each(CASE WHEN jsonb_typeof(a -> 'spend') = 'object' THEN a -> 'spend' ELSE '{}' END) e;
    RETURN;
  END IF;
  IF NOT a ? 'linear' THEN
    PERFORM ml.invalid(format('ml_weights is for clv, linear_reg and logistic_reg models; "%s" is a %s model (see ml_feature_importance or ml_centroids)', m.model_name, coalesce(a ->> 'model_type', m.model_type)));
  END IF;
  RETURN QUERY
    WITH k AS (SELECT w, ki FROM jsonb_array_elements(a -> 'linear' -> 'weights') WITH ORDINALITY x(w, ki)),
    cls AS (SELECT k.ki, CASE WHEN jsonb_array_length(a -> 'linear' -> 'weights') = 1 THEN NULL
                              ELSE (ml.class_labels(a))[k.ki] END AS label, k.w FROM k)
    SELECT f ->> 'name',
           CASE WHEN f ->> 'kind' = 'numeric' THEN (cls.w ->> (f ->> 'offset')::int)::float8 / (f ->> 'scale')::float8 END,
           CASE WHEN f ->> 'kind' = 'categorical' THEN
             (SELECT jsonb_agg(jsonb_build_object('category', c.v, 'weight', (cls.w ->> ((f ->> 'offset')::int + c.i::int - 1))::float8) ORDER BY c.i)
                FROM jsonb_array_elements(f -> 'categories') WITH ORDINALITY c(v, i)) END,
           NULL::float8, cls.label
      FROM cls, jsonb_array_elements(a -> 'features') f
    UNION ALL
    SELECT '__INTERCEPT__',
           (a -> 'linear' -> 'intercepts' ->> (cls.ki::int - 1))::float8
             - coalesce((SELECT sum((cls.w ->> (f ->> 'offset')::int)::float8 * (f ->> 'mean')::float8 / (f ->> 'scale')::float8)
                           FROM jsonb_array_elements(a -> 'features') f WHERE f ->> 'kind' = 'numeric'), 0),
           NULL::jsonb, NULL::float8, cls.label
      FROM cls;
END $$;
COMMENT ON FUNCTION @api@.ml_weights(text) IS
  'sqlml: fitted parameters (clv: r, alpha, a, b; p, q, gamma with standard errors) or coefficients on the original scale (linear_reg, logistic_reg), as BigQuery ML.WEIGHTS';

-- The literature's check of a purchase model: customers grouped by their calibration repeat
-- purchases (0, 1, ..., 7+), actual against expected mean purchases in the holdout.
CREATE OR REPLACE FUNCTION @api@.ml_calibration_holdout(model_name text)
RETURNS TABLE (frequency text, customers bigint, actual_holdout_purchases float8, expected_holdout_purchases float8)
LANGUAGE plpgsql STABLE AS $$
DECLARE m ml.models := ml.resolve_model(model_name);
BEGIN
  IF m.model_type <> 'clv' OR NOT m.metrics ? 'calibration_holdout' THEN
    PERFORM ml.invalid(format('ml_calibration_holdout needs a clv model trained with option "calibration_end"; "%s" is a %s model%s', m.model_name, m.model_type,
                              CASE WHEN m.model_type = 'clv' THEN ' without one' ELSE '' END));
  END IF;
  RETURN QUERY
    SELECT g ->> 'frequency', (g ->> 'customers')::bigint, (g ->> 'actual')::float8, (g ->> 'expected')::float8
      FROM jsonb_array_elements(m.metrics -> 'calibration_holdout') WITH ORDINALITY x(g, i) ORDER BY i;
END $$;
COMMENT ON FUNCTION @api@.ml_calibration_holdout(text) IS
  'sqlml: clv models with a calibration split: per calibration frequency (0 .. 7+), customers, actual and expected mean holdout purchases';

-- The probability-alive matrix (lifetimes' plot_probability_alive_matrix): P(alive) of a
-- customer observed for `age` time units (default: the longest in the training data), per
-- repeat-purchase count 0..max_frequency (default: the largest seen) and recency (the time of
-- the last purchase, `steps` steps from 0 to age).
CREATE OR REPLACE FUNCTION @api@.ml_probability_alive_matrix(model_name text, age float8 DEFAULT NULL, max_frequency int DEFAULT NULL, steps int DEFAULT 20)
RETURNS TABLE (frequency int, recency float8, p_alive float8)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, '{}');
  tt float8 := coalesce(age, (m.metrics ->> 'max_age')::float8);
  fmax int := coalesce(max_frequency, least((m.metrics ->> 'max_frequency')::int, 100));
BEGIN
  PERFORM ml.require_model_type(m, 'ml_probability_alive_matrix', ARRAY['clv'], 'clv');
  IF tt IS NULL OR tt <= 0 OR fmax IS NULL OR fmax < 0 OR fmax > 1000 OR steps IS NULL OR steps < 1 OR steps > 1000 THEN
    PERFORM ml.invalid('ml_probability_alive_matrix needs age > 0, max_frequency in 0..1000 and steps in 1..1000 (a model trained before they were kept needs both given)');
  END IF;
  RETURN QUERY EXECUTE format($q$
    SELECT f::int, r, (%1$s(f, CASE WHEN f = 0 THEN 0 ELSE r END, $1, 0, 0, 0))[1]
      FROM generate_series(0, $2) f, LATERAL (SELECT $1 * s / $3 AS r FROM generate_series(0, $3) s) g
     ORDER BY f, r
  $q$, t.scores_function) USING tt, fmax, steps;
END $$;
COMMENT ON FUNCTION @api@.ml_probability_alive_matrix(text, float8, int, int) IS
  'sqlml: P(alive) per repeat-purchase count and recency for a customer observed for `age` time units (default: the longest in the training data), as lifetimes'' probability-alive matrix';
