-- Exploring a query before modelling it (seed 003's pandas steps, BigQuery ML's
-- ML.DESCRIBE_DATA): ml_describe and ml_correlation run synchronously, in PostgreSQL, with the
-- caller's rights; nothing goes through the sidecar.

-- One row per column: type, count, NULLs, distinct values, min and max, and for numbers mean,
-- sample standard deviation (as pandas' describe) and quartiles (linear interpolation, as
-- pandas' default); the most frequent values of other columns; the row count and the duplicate
-- rows (rows equal to an earlier one, as pandas' duplicated().sum()) of the whole query.
CREATE OR REPLACE FUNCTION @api@.ml_describe(query text, options jsonb DEFAULT '{}')
RETURNS TABLE (column_name text, ordinal int, data_type text, count bigint, nulls bigint, distinct_count bigint,
               min text, max text, mean float8, stddev float8, p25 float8, p50 float8, p75 float8,
               top_values jsonb, rows bigint, duplicate_rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
  q text := ml.safe_query(ml.strip_query(query));
  top int;
  col record;
  parts text[] := '{}';
  stats jsonb[];
  n bigint;
  dups bigint;
  tops jsonb;
BEGIN
  PERFORM ml.check_options(options, ARRAY['top']);
  PERFORM ml.opt_int(options, 'top', 1, 100);
  top := coalesce((options ->> 'top')::int, 5);
  FOR col IN SELECT c.ordinal, c.name, t.typcategory::text AS cat FROM ml.query_columns(q) c JOIN pg_catalog.pg_type t ON t.oid = c.type ORDER BY c.ordinal LOOP
    parts := parts || pg_catalog.format(
      'pg_catalog.jsonb_build_object(''count'', pg_catalog.count(q.%1$I)%2$s%3$s)', col.name,
      CASE WHEN col.cat IN ('N', 'S', 'D', 'E', 'B') THEN pg_catalog.format(', ''distinct'', pg_catalog.count(DISTINCT q.%I)', col.name) ELSE '' END,
      CASE WHEN col.cat = 'N' THEN pg_catalog.format(
             ', ''min'', pg_catalog.min(q.%1$I)::text, ''max'', pg_catalog.max(q.%1$I)::text, ''mean'', pg_catalog.avg(q.%1$I::float8), ''stddev'', pg_catalog.stddev_samp(q.%1$I::float8),' ||
             ' ''q'', pg_catalog.percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY q.%1$I::float8)', col.name)
           WHEN col.cat IN ('S', 'D', 'E') THEN pg_catalog.format(', ''min'', pg_catalog.min(q.%1$I)::text, ''max'', pg_catalog.max(q.%1$I)::text', col.name)
           ELSE '' END);
  END LOOP;
  IF pg_catalog.cardinality(parts) = 0 THEN
    PERFORM ml.invalid('the query has no columns to describe');
  END IF;
  EXECUTE pg_catalog.format(E'SELECT pg_catalog.count(*), ARRAY[%s] FROM (\n%s\n) q', pg_catalog.array_to_string(parts, ', '), q) INTO n, stats;
  EXECUTE pg_catalog.format(E'SELECT coalesce(pg_catalog.sum(d.k - 1), 0)::bigint FROM (SELECT pg_catalog.count(*) AS k FROM (\n%s\n) q GROUP BY q::text HAVING pg_catalog.count(*) > 1) d', q) INTO dups;
  FOR col IN SELECT c.ordinal, c.name, t.typcategory::text AS cat, pg_catalog.format_type(c.type, NULL) AS typ
               FROM ml.query_columns(q) c JOIN pg_catalog.pg_type t ON t.oid = c.type ORDER BY c.ordinal LOOP
    tops := NULL;
    IF col.cat <> 'N' THEN
      EXECUTE pg_catalog.format(
        E'SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(''value'', v.v, ''count'', v.k) ORDER BY v.k DESC, v.v)' ||
        E' FROM (SELECT q.%1$I::text AS v, pg_catalog.count(*) AS k FROM (\n%2$s\n) q WHERE q.%1$I IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %3$s) v',
        col.name, q, top) INTO tops;
    END IF;
    column_name := col.name;
    ordinal := col.ordinal;
    data_type := col.typ;
    count := (stats[col.ordinal] ->> 'count')::bigint;
    nulls := n - count;
    distinct_count := (stats[col.ordinal] ->> 'distinct')::bigint;
    min := stats[col.ordinal] ->> 'min';
    max := stats[col.ordinal] ->> 'max';
    mean := (stats[col.ordinal] ->> 'mean')::float8;
    stddev := (stats[col.ordinal] ->> 'stddev')::float8;
    p25 := (stats[col.ordinal] -> 'q' ->> 0)::float8;
    p50 := (stats[col.ordinal] -> 'q' ->> 1)::float8;
    p75 := (stats[col.ordinal] -> 'q' ->> 2)::float8;
    top_values := coalesce(tops, CASE WHEN col.cat <> 'N' THEN '[]'::jsonb END);
    rows := n;
    duplicate_rows := dups;
    RETURN NEXT;
  END LOOP;
END $$;
COMMENT ON FUNCTION @api@.ml_describe(text, jsonb) IS
  'sqlml: per column of a query: type, count, nulls, distinct, min, max, mean, stddev, quartiles, top values; the rows and duplicate rows of the query (option "top": values listed, default 5)';

-- Every pair of numeric columns: Pearson's and Spearman's correlation (Spearman: Pearson's of
-- the average ranks, each column ranked over its non-NULL values) on the rows where both are
-- present, and whether the pair is redundant (|Pearson| >= option "threshold", default 0.9),
-- i.e. one of the two can be left out of a model.
CREATE OR REPLACE FUNCTION @api@.ml_correlation(query text, options jsonb DEFAULT '{}')
RETURNS TABLE (column_a text, column_b text, pearson float8, spearman float8, n bigint, redundant boolean)
LANGUAGE plpgsql AS $$
DECLARE
  q text := ml.safe_query(ml.strip_query(query));
  threshold float8;
  cols text[];
  ranks text;
  aggs text[] := '{}';
  res float8[];
  counts bigint[];
  i int;
  j int;
  k int := 0;
  pairs int;
BEGIN
  PERFORM ml.check_options(options, ARRAY['threshold']);
  PERFORM ml.opt_number(options, 'threshold', 0, 1);
  threshold := coalesce((options ->> 'threshold')::float8, 0.9);
  SELECT pg_catalog.array_agg(c.name ORDER BY c.ordinal) INTO cols
    FROM ml.query_columns(q) c JOIN pg_catalog.pg_type t ON t.oid = c.type WHERE t.typcategory = 'N';
  IF coalesce(pg_catalog.cardinality(cols), 0) < 2 THEN
    PERFORM ml.invalid(pg_catalog.format('ml_correlation needs at least two numeric columns; the query has %s', coalesce(pg_catalog.cardinality(cols), 0)));
  END IF;
  -- x<i>: the value as float8; r<i>: its average rank among the column's non-NULL values
  SELECT pg_catalog.string_agg(pg_catalog.format(
           'q.%1$I::float8 AS x%2$s, CASE WHEN q.%1$I IS NOT NULL THEN pg_catalog.rank() OVER (PARTITION BY q.%1$I IS NULL ORDER BY q.%1$I)' ||
           ' + (pg_catalog.count(*) OVER (PARTITION BY q.%1$I) - 1) / 2.0 END AS r%2$s', c, o), ', ' ORDER BY o)
    INTO ranks FROM pg_catalog.unnest(cols) WITH ORDINALITY AS u(c, o);
  FOR i IN 1 .. pg_catalog.cardinality(cols) LOOP
    FOR j IN i + 1 .. pg_catalog.cardinality(cols) LOOP
      aggs := aggs || pg_catalog.format('pg_catalog.corr(x%1$s, x%2$s), pg_catalog.corr(r%1$s, r%2$s) FILTER (WHERE x%1$s IS NOT NULL AND x%2$s IS NOT NULL), pg_catalog.regr_count(x%1$s, x%2$s)::float8', i, j);
    END LOOP;
  END LOOP;
  -- a constant column has no correlation (corr() would return float rounding noise for it)
  FOR i IN 1 .. pg_catalog.cardinality(cols) LOOP
    aggs := aggs || pg_catalog.format('(pg_catalog.min(x%1$s) = pg_catalog.max(x%1$s))::int::float8', i);
  END LOOP;
  EXECUTE pg_catalog.format(E'SELECT ARRAY[%s] FROM (SELECT %s FROM (\n%s\n) q) z', pg_catalog.array_to_string(aggs, ', '), ranks, q) INTO res;
  pairs := pg_catalog.cardinality(cols) * (pg_catalog.cardinality(cols) - 1) / 2;
  FOR i IN 1 .. pg_catalog.cardinality(cols) LOOP
    FOR j IN i + 1 .. pg_catalog.cardinality(cols) LOOP
      column_a := cols[i];
      column_b := cols[j];
      pearson := CASE WHEN res[3 * pairs + i] = 0 AND res[3 * pairs + j] = 0 THEN res[k * 3 + 1] END;
      spearman := CASE WHEN res[3 * pairs + i] = 0 AND res[3 * pairs + j] = 0 THEN res[k * 3 + 2] END;
      n := res[k * 3 + 3]::bigint;
      redundant := coalesce(abs(pearson) >= threshold, false);
      k := k + 1;
      RETURN NEXT;
    END LOOP;
  END LOOP;
END $$;
COMMENT ON FUNCTION @api@.ml_correlation(text, jsonb) IS
  'sqlml: per pair of numeric columns of a query: pearson, spearman, n (rows with both) and redundant (|pearson| >= option "threshold", default 0.9)';
