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
-- i.e. one of the two can be left out of a model. Pearson is one aggregate pass over every
-- row; Spearman needs a sort per column, so above spearman_sample rows (default 100,000) it is
-- computed on a sample of that size (a standard error of ~0.003).
CREATE OR REPLACE FUNCTION @api@.ml_correlation(query text, options jsonb DEFAULT '{}')
RETURNS TABLE (column_a text, column_b text, pearson float8, spearman float8, n bigint, redundant boolean)
LANGUAGE plpgsql AS $$
DECLARE
  q text := ml.safe_query(ml.strip_query(query));
  threshold float8;
  sample bigint;
  cols text[];
  xs text;
  ranks text;
  aggs text[] := '{}';
  raggs text[] := '{}';
  res float8[];
  rres float8[];
  total bigint;
  m int;
  i int;
  j int;
  k int := 0;
  pairs int;
BEGIN
  PERFORM ml.check_options(options, ARRAY['threshold', 'spearman_sample']);
  PERFORM ml.opt_number(options, 'threshold', 0, 1);
  PERFORM ml.opt_int(options, 'spearman_sample', 1000, 1000000000);
  threshold := coalesce((options ->> 'threshold')::float8, 0.9);
  sample := coalesce((options ->> 'spearman_sample')::bigint, 100000);
  SELECT pg_catalog.array_agg(c.name ORDER BY c.ordinal) INTO cols
    FROM ml.query_columns(q) c JOIN pg_catalog.pg_type t ON t.oid = c.type WHERE t.typcategory = 'N';
  m := coalesce(pg_catalog.cardinality(cols), 0);
  IF m < 2 THEN
    PERFORM ml.invalid(pg_catalog.format('ml_correlation needs at least two numeric columns; the query has %s', m));
  END IF;
  pairs := m * (m - 1) / 2;
  SELECT pg_catalog.string_agg(pg_catalog.format('q.%I::float8 AS x%s', c, o), ', ' ORDER BY o)
    INTO xs FROM pg_catalog.unnest(cols) WITH ORDINALITY AS u(c, o);
  -- pass 1, every row: Pearson and the pair counts; whether each column is constant (corr()
  -- would return float rounding noise for it); the row count
  FOR i IN 1 .. m LOOP
    FOR j IN i + 1 .. m LOOP
      aggs := aggs || pg_catalog.format('pg_catalog.corr(x%1$s, x%2$s), pg_catalog.regr_count(x%1$s, x%2$s)::float8', i, j);
      raggs := raggs || pg_catalog.format('pg_catalog.corr(r%1$s, r%2$s) FILTER (WHERE r%1$s IS NOT NULL AND r%2$s IS NOT NULL)', i, j);
    END LOOP;
  END LOOP;
  FOR i IN 1 .. m LOOP
    aggs := aggs || pg_catalog.format('(pg_catalog.min(x%1$s) = pg_catalog.max(x%1$s))::int::float8', i);
  END LOOP;
  aggs := aggs || 'pg_catalog.count(*)::float8'::text;
  EXECUTE pg_catalog.format(E'SELECT ARRAY[%s] FROM (SELECT %s FROM (\n%s\n) q) z', pg_catalog.array_to_string(aggs, ', '), xs, q) INTO res;
  total := res[2 * pairs + m + 1]::bigint;
  -- pass 2, every row or a pseudo-random sample of about `sample` rows (by a hash of the row
  -- number: the same rows each time, and no period of the data can bias it): r<i> is the
  -- value's average rank among the column's non-NULL values (rank() = the first position of
  -- its ties, count(*) over the same ordered window = the last), one sort per column
  SELECT pg_catalog.string_agg(pg_catalog.format(
           'CASE WHEN x%1$s IS NOT NULL THEN (pg_catalog.rank() OVER w%1$s + pg_catalog.count(*) OVER w%1$s) / 2.0 END AS r%1$s', o), ', ' ORDER BY o)
         || ' FROM (SELECT * FROM (SELECT ' || xs || pg_catalog.format(E', pg_catalog.row_number() OVER () AS sqlml_row FROM (\n%s\n) q) s WHERE %s) z WINDOW ', q,
                                      CASE WHEN total <= sample THEN 'true'
                                           ELSE pg_catalog.format('(pg_catalog.hashint8(s.sqlml_row) & 2147483647) < %s', floor(2147483648 * sample::numeric / total)) END)
         || pg_catalog.string_agg(pg_catalog.format('w%1$s AS (PARTITION BY x%1$s IS NULL ORDER BY x%1$s)', o), ', ' ORDER BY o)
    INTO ranks FROM pg_catalog.generate_series(1, m) AS u(o);
  EXECUTE pg_catalog.format('SELECT ARRAY[%s] FROM (SELECT %s) y', pg_catalog.array_to_string(raggs, ', '), ranks) INTO rres;
  FOR i IN 1 .. m LOOP
    FOR j IN i + 1 .. m LOOP
      column_a := cols[i];
      column_b := cols[j];
      k := k + 1;
      IF res[2 * pairs + i] = 0 AND res[2 * pairs + j] = 0 THEN
        pearson := res[2 * k - 1];
        spearman := rres[k];
      ELSE
        pearson := NULL;
        spearman := NULL;
      END IF;
      n := res[2 * k]::bigint;
      redundant := coalesce(abs(pearson) >= threshold, false);
      RETURN NEXT;
    END LOOP;
  END LOOP;
END $$;
COMMENT ON FUNCTION @api@.ml_correlation(text, jsonb) IS
  'sqlml: per pair of numeric columns of a query: pearson, spearman (on a sample above option "spearman_sample" rows, default 100,000), n (rows with both) and redundant (|pearson| >= option "threshold", default 0.9)';
