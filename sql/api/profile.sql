-- 006: describing segments (SQL-inf's persona workflow): the over/under-index of every column
-- per segment, and a one-line summary per segment. Plain SQL over jsonb rows, so any query's
-- columns can be profiled, including "overlay" columns that were never model features.

-- src_sql yields (segment text, r jsonb): the row's columns to profile.
CREATE OR REPLACE FUNCTION ml.profile(src_sql text, options jsonb)
RETURNS TABLE (segment text, segment_size bigint, segment_share float8, feature text, category text,
               segment_value float8, baseline_value float8, index float8, std_diff float8, rank int)
LANGUAGE plpgsql AS $$
DECLARE
  k text;
  baseline text := coalesce(lower(options ->> 'baseline'), 'population');
  include_noise boolean := coalesce((options ->> 'include_noise')::boolean, false);
  max_categories int;
  min_share float8;
BEGIN
  IF jsonb_typeof(coalesce(options, '{}')) <> 'object' THEN
    PERFORM ml.invalid(format('options must be a JSON object (got %s)', options::text));
  END IF;
  FOR k IN SELECT jsonb_object_keys(coalesce(options, '{}')) LOOP
    IF k NOT IN ('baseline', 'include_noise', 'exclude', 'noun', 'top', 'max_categories', 'min_category_share') THEN
      PERFORM ml.invalid(format('unknown option "%s"; allowed: baseline, include_noise, exclude, noun, top, max_categories, min_category_share', k));
    END IF;
  END LOOP;
  PERFORM ml.opt_enum(options, 'baseline', ARRAY['population', 'segment_means']);
  PERFORM ml.opt_bool(options, 'include_noise');
  PERFORM ml.opt_name_list(options, 'exclude');
  PERFORM ml.opt_int(options, 'max_categories', 1, 100000);
  PERFORM ml.opt_number(options, 'min_category_share', 0, 1);
  max_categories := coalesce((options ->> 'max_categories')::int, 100);
  min_share := coalesce((options ->> 'min_category_share')::float8, 0.01);
  RETURN QUERY EXECUTE format($q$
    WITH src AS MATERIALIZED (%1$s),
    sizes AS (SELECT s.segment, count(*) AS n FROM src s GROUP BY s.segment),
    total AS (SELECT sum(n) AS n FROM sizes),
    -- noise (-1) is profiled as its own segment, and left out of the baseline unless asked
    in_base AS (SELECT s.segment FROM sizes s WHERE $1 OR s.segment IS DISTINCT FROM '-1'),
    kv AS MATERIALIZED (
      SELECT s.segment, e.key AS feature, e.value AS v
        FROM src s, jsonb_each(s.r) e
       WHERE NOT e.key = ANY ($2)),
    kinds AS (SELECT kv.feature, bool_and(jsonb_typeof(kv.v) IN ('number', 'null')) AS is_numeric FROM kv GROUP BY kv.feature),
    num AS (
      SELECT kv.segment, kv.feature, avg((kv.v #>> '{}')::float8) AS mean
        FROM kv JOIN kinds USING (feature) WHERE kinds.is_numeric GROUP BY kv.segment, kv.feature),
    num_pop AS (
      SELECT kv.feature, avg((kv.v #>> '{}')::float8) AS mean, stddev_pop((kv.v #>> '{}')::float8) AS sd
        FROM kv JOIN kinds USING (feature) WHERE kinds.is_numeric AND kv.segment IN (SELECT segment FROM in_base)
       GROUP BY kv.feature),
    num_base AS (
      SELECT p.feature, CASE WHEN $3 = 'segment_means'
                             THEN (SELECT avg(n.mean) FROM num n WHERE n.feature = p.feature AND n.segment IN (SELECT segment FROM in_base))
                             ELSE p.mean END AS mean, p.sd
        FROM num_pop p),
    -- a column of more than max_categories values keeps its categories of at least
    -- min_category_share of the rows (at most max_categories - 1) and pools the rest in (other),
    -- the rule training applies
    cat_count AS (
      SELECT kv.feature, coalesce(kv.v #>> '{}', '(null)') AS category, count(*) AS n
        FROM kv JOIN kinds USING (feature) WHERE NOT kinds.is_numeric GROUP BY 1, 2),
    cat_name AS (
      SELECT c.feature, c.category,
             CASE WHEN count(*) OVER w <= $4
                    OR (c.n >= $5 * (SELECT n FROM total) AND row_number() OVER (w ORDER BY c.n DESC, c.category) < $4)
                  THEN c.category ELSE '(other)' END AS shown
        FROM cat_count c WINDOW w AS (PARTITION BY c.feature)),
    cat AS (
      SELECT kv.segment, kv.feature, cn.shown AS category, count(*)::float8 / sz.n AS share
        FROM kv JOIN cat_name cn ON cn.feature = kv.feature AND cn.category = coalesce(kv.v #>> '{}', '(null)')
        JOIN sizes sz ON sz.segment IS NOT DISTINCT FROM kv.segment
       GROUP BY kv.segment, kv.feature, 3, sz.n),
    cat_all AS (  -- every (segment, feature, category), with share 0 where a segment lacks the category
      SELECT sz.segment, c.feature, c.category, coalesce(x.share, 0) AS share
        FROM sizes sz CROSS JOIN (SELECT DISTINCT feature, category FROM cat) c
        LEFT JOIN cat x ON x.segment IS NOT DISTINCT FROM sz.segment AND x.feature = c.feature AND x.category = c.category),
    cat_base AS (
      SELECT c.feature, c.category,
             CASE WHEN $3 = 'segment_means' THEN avg(c.share)
                  ELSE sum(c.share * sz.n) / sum(sz.n) END AS share
        FROM cat_all c JOIN sizes sz ON sz.segment IS NOT DISTINCT FROM c.segment
       WHERE c.segment IN (SELECT segment FROM in_base)
       GROUP BY c.feature, c.category),
    rows_ AS (
      SELECT n.segment, n.feature, NULL::text AS category, n.mean AS segment_value, b.mean AS baseline_value,
             CASE WHEN b.mean <> 0 THEN n.mean / b.mean - 1 END AS index,
             CASE WHEN b.sd > 0 THEN (n.mean - b.mean) / b.sd ELSE 0 END AS std_diff
        FROM num n JOIN num_base b USING (feature)
      UNION ALL
      SELECT c.segment, c.feature, c.category, c.share, b.share,
             CASE WHEN b.share > 0 THEN c.share / b.share - 1 END,
             CASE WHEN b.share > 0 AND b.share < 1 THEN (c.share - b.share) / sqrt(b.share * (1 - b.share)) ELSE 0 END
        FROM cat_all c JOIN cat_base b USING (feature, category))
    SELECT r.segment, sz.n, sz.n::float8 / (SELECT n FROM total), r.feature, r.category,
           r.segment_value, r.baseline_value, r.index, r.std_diff,
           (row_number() OVER (PARTITION BY r.segment ORDER BY abs(r.std_diff) DESC, r.feature, r.category))::int
      FROM rows_ r JOIN sizes sz ON sz.segment IS NOT DISTINCT FROM r.segment
     ORDER BY CASE WHEN r.segment ~ '^-?[0-9]+$' THEN r.segment::numeric END, r.segment, 10
  $q$, src_sql) USING include_noise,
        coalesce(ARRAY(SELECT jsonb_array_elements_text(CASE jsonb_typeof(options -> 'exclude') WHEN 'string' THEN jsonb_build_array(options -> 'exclude') ELSE coalesce(options -> 'exclude', '[]') END)), '{}'),
        baseline, max_categories, min_share;
END $$;

CREATE OR REPLACE FUNCTION @api@.ml_profile(segments_query text, segment_column text, options jsonb DEFAULT '{}')
RETURNS TABLE (segment text, segment_size bigint, segment_share float8, feature text, category text,
               segment_value float8, baseline_value float8, index float8, std_diff float8, rank int)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY SELECT * FROM ml.profile(
    format('SELECT to_jsonb(q) ->> %L AS segment, to_jsonb(q) - %L AS r FROM (%s) q', segment_column, segment_column, ml.safe_query(ml.strip_query(segments_query))),
    options);
END $$;
COMMENT ON FUNCTION @api@.ml_profile(text, text, jsonb) IS
  'sqlml: per (segment, feature[, category]): segment value, baseline, index (= value / baseline - 1), standardized difference and rank';

-- Segments from a model's predictions; the model's excluded columns (ids) are not profiled.
CREATE OR REPLACE FUNCTION ml.model_profile_source(model_name text, query text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE m ml.models := ml.resolve_model(model_name);
BEGIN
  RETURN format('SELECT p.centroid_id::text AS segment, p.input - %L::text[] AS r FROM %s.ml_predict(%L, %L) p',
                ARRAY(SELECT jsonb_array_elements_text(coalesce(m.options -> 'exclude', '[]'))),
                quote_ident((SELECT value FROM ml.settings WHERE key = 'api_schema')), model_name, query);
END $$;

CREATE OR REPLACE FUNCTION @api@.ml_profile_model(model_name text, query text, options jsonb DEFAULT '{}')
RETURNS TABLE (segment text, segment_size bigint, segment_share float8, feature text, category text,
               segment_value float8, baseline_value float8, index float8, std_diff float8, rank int)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY SELECT * FROM ml.profile(ml.model_profile_source(model_name, query), options);
END $$;
COMMENT ON FUNCTION @api@.ml_profile_model(text, text, jsonb) IS
  'sqlml: ml_profile with the segments a model assigns to the rows of a query (every column of the query is profiled)';

-- One line per segment: size, share, the top over- and under-indexed features, and a
-- plain-text description such as "1,204 customers (23%): balance +154%, job=retired x3.1".
CREATE OR REPLACE FUNCTION ml.summary(src_sql text, options jsonb)
RETURNS TABLE (segment text, segment_size bigint, segment_share float8, top_over jsonb, top_under jsonb, description text)
LANGUAGE plpgsql AS $$
DECLARE
  noun text := coalesce(options ->> 'noun', 'rows');
  top int := coalesce((options ->> 'top')::int, 3);
BEGIN
  PERFORM ml.opt_int(options, 'top', 1, 50);
  RETURN QUERY
  WITH p AS (SELECT * FROM ml.profile(src_sql, options)),
  item AS (
    SELECT p.*, CASE WHEN p.category IS NULL
                     THEN format('%s %s%s%%', p.feature, CASE WHEN p.index >= 0 THEN '+' ELSE '' END, round((p.index * 100)::numeric))
                     ELSE format('%s=%s ×%s', p.feature, p.category, round((p.index + 1)::numeric, 1)) END AS words
      FROM p WHERE p.index IS NOT NULL)
  SELECT s.segment, s.segment_size, s.segment_share,
         (SELECT coalesce(jsonb_agg(jsonb_build_object('feature', i.feature, 'category', i.category, 'index', i.index, 'std_diff', i.std_diff) ORDER BY i.std_diff DESC), '[]')
            FROM (SELECT * FROM item i WHERE i.segment IS NOT DISTINCT FROM s.segment AND i.std_diff > 0 ORDER BY i.std_diff DESC LIMIT top) i),
         (SELECT coalesce(jsonb_agg(jsonb_build_object('feature', i.feature, 'category', i.category, 'index', i.index, 'std_diff', i.std_diff) ORDER BY i.std_diff), '[]')
            FROM (SELECT * FROM item i WHERE i.segment IS NOT DISTINCT FROM s.segment AND i.std_diff < 0 ORDER BY i.std_diff LIMIT top) i),
         format('%s %s (%s%%): %s', to_char(s.segment_size, 'FM999,999,999,999'), noun, round((s.segment_share * 100)::numeric),
                -- one phrase per feature: a numeric feature's change, or its most over-represented category
                (SELECT string_agg(w.words, ', ' ORDER BY abs(w.std_diff) DESC)
                   FROM (SELECT d.* FROM (SELECT DISTINCT ON (i.feature) i.* FROM item i
                                           WHERE i.segment IS NOT DISTINCT FROM s.segment AND (i.category IS NULL OR i.std_diff > 0)
                                           ORDER BY i.feature, abs(i.std_diff) DESC) d
                          ORDER BY abs(d.std_diff) DESC LIMIT top) w))
    FROM (SELECT DISTINCT p.segment, p.segment_size, p.segment_share FROM p) s
   ORDER BY CASE WHEN s.segment ~ '^-?[0-9]+$' THEN s.segment::numeric END, s.segment;
END $$;

CREATE OR REPLACE FUNCTION @api@.ml_segment_summary(segments_query text, segment_column text, options jsonb DEFAULT '{}')
RETURNS TABLE (segment text, segment_size bigint, segment_share float8, top_over jsonb, top_under jsonb, description text)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY SELECT * FROM ml.summary(
    format('SELECT to_jsonb(q) ->> %L AS segment, to_jsonb(q) - %L AS r FROM (%s) q', segment_column, segment_column, ml.safe_query(ml.strip_query(segments_query))),
    options);
END $$;
COMMENT ON FUNCTION @api@.ml_segment_summary(text, text, jsonb) IS
  'sqlml: one row per segment: size, share, top over/under-indexed features and a one-line description (option "noun", e.g. "customers")';

CREATE OR REPLACE FUNCTION @api@.ml_segment_summary_model(model_name text, query text, options jsonb DEFAULT '{}')
RETURNS TABLE (segment text, segment_size bigint, segment_share float8, top_over jsonb, top_under jsonb, description text)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY SELECT * FROM ml.summary(ml.model_profile_source(model_name, query), options);
END $$;
COMMENT ON FUNCTION @api@.ml_segment_summary_model(text, text, jsonb) IS
  'sqlml: ml_segment_summary with the segments a model assigns to the rows of a query';
