-- Recency, frequency, monetary value and age per customer from a plain transactions query, in
-- PostgreSQL (GROUP BYs; the transactions never leave the database): what ml_rfm returns and
-- what a clv model is fitted on. The definitions of the "buy 'til you die" literature (and of
-- Python's lifetimes):
--   frequency       repeat purchase days: purchases on the same day count once, the first
--                   purchase is not a repeat;
--   recency         first to last purchase, in time units;
--   age             first purchase to the end of observation (the literature's T);
--   monetary_value  mean value of the repeat purchase days (0 without repeats);
-- with a calibration end, the summary covers the purchases up to it (customers whose first
-- purchase came later are left out), and holdout_frequency / holdout_monetary_value count the
-- purchase days after it, up to the observation end.

-- Days per time unit (NULL for an unknown unit).
CREATE OR REPLACE FUNCTION ml.time_unit_days(unit text) RETURNS float8
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT CASE lower(coalesce(unit, 'week')) WHEN 'day' THEN 1 WHEN 'week' THEN 7 WHEN 'month' THEN 30.4375 END::float8
$$;

-- The RFM summary of `source` (a FROM item: a parenthesised query or a function call) as one
-- SELECT: identifiers quoted, every option a literal. Columns: customer_id (text), frequency,
-- recency, age, monetary_value, first_purchase, last_purchase, holdout_frequency,
-- holdout_monetary_value and holdout_duration (the holdout's length in time units; the three
-- NULL without a calibration end).
CREATE OR REPLACE FUNCTION ml.rfm_sql(source text, customer_col text, time_col text, value_col text,
                                      unit_days float8, observation_end date, calibration_end date) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  -- One pass: purchase days per customer (GROUP BY customer, day), each day marked calibration
  -- or holdout, one GROUP BY customer with FILTERs, the end dates from the customers' rows (a
  -- window over customers, not over transactions: no set of transactions is kept twice).
  SELECT format($f$
    SELECT r.customer_id, r.frequency, r.recency,
           (r.cal_end - r.first_d) / %5$s::float8 AS age,
           r.monetary_value, r.first_d AS first_purchase, r.last_d AS last_purchase,
           CASE WHEN %7$s IS NOT NULL THEN r.hn END::float8 AS holdout_frequency,
           CASE WHEN %7$s IS NOT NULL THEN coalesce(r.hm, 0) END::float8 AS holdout_monetary_value,
           CASE WHEN %7$s IS NOT NULL THEN (r.obs_end - r.cal_end) / %5$s::float8 END AS holdout_duration
      FROM (SELECT g.c::text AS customer_id, g.frequency::float8 AS frequency,
                   (g.last_d - g.first_d) / %5$s::float8 AS recency,
                   coalesce(g.monetary_value, 0)::float8 AS monetary_value, g.first_d, g.last_d, g.hn, g.hm,
                   coalesce(%6$s, max(g.last_any) OVER ()) AS obs_end,
                   coalesce(%7$s, %6$s, max(g.last_any) OVER ()) AS cal_end
              FROM (SELECT t.c, min(t.d) FILTER (WHERE t.cal) AS first_d, max(t.d) FILTER (WHERE t.cal) AS last_d,
                           count(*) FILTER (WHERE t.cal) - 1 AS frequency,
                           avg(t.v) FILTER (WHERE t.cal AND t.d > t.first_any) AS monetary_value,
                           count(*) FILTER (WHERE NOT t.cal) AS hn, avg(t.v) FILTER (WHERE NOT t.cal) AS hm,
                           max(t.d) AS last_any
                      FROM (SELECT dd.c, dd.d, dd.v, coalesce(dd.d <= %7$s, true) AS cal,
                                   min(dd.d) OVER (PARTITION BY dd.c) AS first_any
                              FROM (SELECT q.%2$I AS c, q.%3$I::date AS d, sum(%4$s) AS v
                                      FROM %1$s q
                                     WHERE q.%2$I IS NOT NULL AND q.%3$I IS NOT NULL AND (%6$s IS NULL OR q.%3$I::date <= %6$s)
                                     GROUP BY 1, 2) dd) t
                     GROUP BY t.c
                    HAVING count(*) FILTER (WHERE t.cal) > 0) g) r$f$,
    source, customer_col, time_col,
    CASE WHEN value_col IS NULL THEN 'NULL::float8' ELSE format('q.%I::float8', value_col) END,
    unit_days, ml.date_sql(observation_end), ml.date_sql(calibration_end))
$$;

-- A date as SQL that reads the same in every session: make_date(y, m, d) (a quoted literal, once
-- a view is deparsed in a session with DateStyle SQL, DMY, would be read back as another day by
-- the reader's session). NULL::date for none.
CREATE OR REPLACE FUNCTION ml.date_sql(d date) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT CASE WHEN d IS NULL THEN 'NULL::date'
              ELSE format('make_date(%s, %s, %s)', extract(year FROM d)::int, extract(month FROM d)::int, extract(day FROM d)::int) END
$$;

-- The options an RFM summary shares with clv models, checked: column names as strings, the
-- time unit, the dates and their order.
CREATE OR REPLACE FUNCTION ml.check_rfm_options(options jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE k text;
BEGIN
  FOREACH k IN ARRAY ARRAY['customer_col', 'time_col', 'value_col'] LOOP
    IF options ? k AND jsonb_typeof(options -> k) NOT IN ('string', 'null') THEN
      PERFORM ml.invalid(format('option "%s" must be a column name (got %s)', k, (options -> k)::text));
    END IF;
  END LOOP;
  PERFORM ml.opt_enum(options, 'time_unit', ARRAY['day', 'week', 'month']);
  FOREACH k IN ARRAY ARRAY['observation_end', 'calibration_end'] LOOP
    IF options ? k THEN
      BEGIN
        PERFORM (options ->> k)::date;
      EXCEPTION WHEN OTHERS THEN
        PERFORM ml.invalid(format('option "%s" must be a date such as "1997-09-30" (got %s)', k, (options -> k)::text));
      END;
    END IF;
  END LOOP;
  IF (options ->> 'calibration_end')::date >= (options ->> 'observation_end')::date THEN
    PERFORM ml.invalid(format('"calibration_end" (%s) must come before "observation_end" (%s)', options ->> 'calibration_end', options ->> 'observation_end'));
  END IF;
END $$;

-- The columns and settings of an RFM request, checked: which columns hold the customer, the
-- time and the value (default: the query's first three), the time unit and the dates.
CREATE OR REPLACE FUNCTION ml.rfm_settings(query text, options jsonb,
  OUT customer_col text, OUT time_col text, OUT value_col text, OUT unit_days float8,
  OUT observation_end date, OUT calibration_end date)
LANGUAGE plpgsql AS $$
DECLARE
  cols text[];
  k text;
BEGIN
  PERFORM ml.check_rfm_options(options);
  SELECT pg_catalog.array_agg(c.name ORDER BY c.ordinal) INTO cols FROM ml.query_columns(query) c;
  IF coalesce(pg_catalog.cardinality(cols), 0) < 2 THEN
    PERFORM ml.invalid('the transactions query needs at least a customer column and a time column (and a value column for spend), e.g. SELECT customer_id, ordered_at, amount FROM orders');
  END IF;
  customer_col := coalesce(options ->> 'customer_col', cols[1]);
  time_col := coalesce(options ->> 'time_col', cols[2]);
  value_col := CASE WHEN options ? 'value_col' THEN options ->> 'value_col' ELSE cols[3] END;
  FOREACH k IN ARRAY ARRAY[customer_col, time_col, value_col] LOOP
    IF k IS NOT NULL AND NOT k = ANY (cols) THEN
      PERFORM ml.invalid(pg_catalog.format('column "%s" is not in the transactions query (its columns: %s)', k, pg_catalog.array_to_string(cols, ', ')));
    END IF;
  END LOOP;
  unit_days := ml.time_unit_days(options ->> 'time_unit');
  observation_end := (options ->> 'observation_end')::date;
  calibration_end := (options ->> 'calibration_end')::date;
END $$;

-- The classic RFM segments on the recency and frequency scores (1-5 each), the usual grid of
-- the marketing literature; docs/sql-api.md has the table.
CREATE OR REPLACE FUNCTION ml.rfm_segment(r int, f int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT CASE
    WHEN r >= 4 AND f >= 4 THEN 'Champions'
    WHEN r >= 3 AND f >= 3 THEN 'Loyal'
    WHEN r = 5 AND f = 1 THEN 'New customers'
    WHEN r >= 4 THEN 'Promising'
    WHEN r = 3 THEN 'Need attention'
    WHEN r = 1 AND f = 5 THEN 'Cannot lose them'
    WHEN f >= 3 THEN 'At risk'
    ELSE 'Hibernating' END
$$;

-- customer_type (PostgreSQL's idiom for a result type chosen by the caller, as in
-- jsonb_populate_record(NULL::t, ...)): NULL::bigint gives customer_id as bigint; without it
-- (the two-argument form below), text.
CREATE OR REPLACE FUNCTION @api@.ml_rfm(transactions_query text, options jsonb, customer_type anyelement)
RETURNS TABLE (customer_id anyelement, frequency float8, recency float8, age float8, monetary_value float8,
               first_purchase date, last_purchase date, holdout_frequency float8, holdout_monetary_value float8,
               r_score int, f_score int, m_score int, rfm_segment text)
LANGUAGE plpgsql AS $$
DECLARE
  q text := ml.safe_query(ml.strip_query(transactions_query));
  s record;
BEGIN
  PERFORM ml.check_options(options, ARRAY['customer_col', 'time_col', 'value_col', 'time_unit', 'observation_end', 'calibration_end']);
  s := ml.rfm_settings(q, coalesce(options, '{}'));
  -- scores 1-5 by percent rank, ties sharing their score: recency by the time since the last
  -- purchase (shorter is better), frequency and monetary value (higher is better)
  RETURN QUERY EXECUTE pg_catalog.format($f$
    SELECT x.customer_id::%2$s, x.frequency, x.recency, x.age, x.monetary_value, x.first_purchase, x.last_purchase,
           x.holdout_frequency, x.holdout_monetary_value, x.r_score, x.f_score, x.m_score, ml.rfm_segment(x.r_score, x.f_score)
      FROM (SELECT r.*,
                   least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY r.age - r.recency DESC)))::int AS r_score,
                   least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY r.frequency)))::int AS f_score,
                   least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY r.monetary_value)))::int AS m_score
              FROM (%1$s) r) x
     ORDER BY x.customer_id$f$,
    ml.rfm_sql('(' || q || E'\n)', s.customer_col, s.time_col, s.value_col, s.unit_days, s.observation_end, s.calibration_end),
    pg_catalog.format_type(pg_catalog.pg_typeof(customer_type), NULL));
END $$;
COMMENT ON FUNCTION @api@.ml_rfm(text, jsonb, anyelement) IS
  'sqlml: per customer of a transactions query: frequency (repeat purchase days), recency, age, monetary value, holdout counts with calibration_end, RFM scores 1-5 and segment';

CREATE OR REPLACE FUNCTION @api@.ml_rfm(transactions_query text, options jsonb DEFAULT '{}')
RETURNS TABLE (customer_id text, frequency float8, recency float8, age float8, monetary_value float8,
               first_purchase date, last_purchase date, holdout_frequency float8, holdout_monetary_value float8,
               r_score int, f_score int, m_score int, rfm_segment text)
LANGUAGE sql AS $$
  SELECT * FROM @api@.ml_rfm(transactions_query, options, NULL::text)
$$;
COMMENT ON FUNCTION @api@.ml_rfm(text, jsonb) IS
  'sqlml: ml_rfm with customer_id as text';
