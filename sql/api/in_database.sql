-- In-database k-means ("training_mode": "in_database"): each Lloyd step is one aggregate over
-- the training query, run where the rows are (docs/scale.md). The aggregate sits in a third
-- function of the requester, made with the training function (same guard, owner and grants):
-- its text is fixed at ml_create_model and takes the model (centroids, centring, categories)
-- as parameters, so nothing a step sends is SQL text. Built-in operators and functions only,
-- no COALESCE/LEAST (postgres_fdw ships neither), so that a foreign table's server runs it.

-- The feature columns of a training function as the step reads them: numeric columns as
-- float8 ('n'), text-like and boolean as text ('t'), dates as ISO text ('d'), as the loader does.
CREATE OR REPLACE FUNCTION ml.step_columns(p_function regprocedure, p_exclude jsonb)
RETURNS TABLE (ord int, col text, kind text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  c record;
  i int := 0;
BEGIN
  FOR c IN
    SELECT a.n, t.typname, t.typnamespace = 'pg_catalog'::regnamespace AS catalog
      FROM pg_proc p, unnest(p.proargnames, p.proallargtypes, p.proargmodes) WITH ORDINALITY AS a(n, typ, mode, o)
      JOIN pg_type t ON t.oid = a.typ
     WHERE p.oid = p_function AND a.mode = 't'
       AND NOT a.n = ANY (ARRAY(SELECT jsonb_array_elements_text(coalesce(p_exclude, '[]'))))
     ORDER BY a.o
  LOOP
    i := i + 1;
    ord := i;
    col := c.n;
    kind := CASE WHEN NOT c.catalog THEN NULL
                 WHEN c.typname IN ('int2', 'int4', 'int8', 'float4', 'float8', 'numeric') THEN 'n'
                 WHEN c.typname IN ('text', 'varchar', 'bpchar', 'bool') THEN 't'
                 WHEN c.typname = 'date' THEN 'd' END;
    IF kind IS NULL THEN
      PERFORM ml.invalid(format('column "%s" has a type "training_mode": "in_database" does not read (it takes PostgreSQL''s numbers, text, boolean and date): cast it in the query (e.g. "%s"::float8 or ::text)', c.n, c.n));
    END IF;
    RETURN NEXT;
  END LOOP;
END $$;

-- The step function's body. Parameters, by position (a column of the query may have any name):
--   $1 float8[] centroids, [1:k][0:d] (column 0 is 0: the dimension of a column the model dropped)
--   $2 float8[] per numeric column: its mean (a NULL's value and the centre), $3 its 1 / scale,
--   $4 int[] its model-space dimension (0: dropped)
--   $5 text[] the kept categories as '<categorical column number>:<value>', $6 int[] their dimensions,
--   $7 int[] per categorical column the dimension of NULL, $8 of a category not kept (0: none)
--   $9 float8[] per centroid the sum of squares of its category dimensions
--   $10 boolean: also sum each row's distance (the last step's Davies-Bouldin)
--   $11 int[] per categorical column the dimension before its first category
--   $12 boolean: instead of a step, the standardization's statistics: per query one row of the
--       rows, and per numeric column its sum, non-NULL rows and sum of squares (centred and
--       scaled by $2 and $3; no centroid is read)
-- Returns per nearest centroid the rows, the sums of the numeric dimensions, per categorical
-- column the count of each of its (at most max_categories) categories (FILTER: max_categories
-- comparisons per row and column; grouping by the categories would return a row per
-- combination, up to one per row), the sum of squared norms (the sidecar gets the squared
-- distances from them) and, when asked, the sum of distances: k rows per query, whatever the rows.
-- Every function sqlml writes here is schema-qualified and every operator has operands of one
-- built-in type (literals typed): the body runs with the requester's schemas on its path, where
-- another role's better-matching array_position(float8[], float8) or *(numeric, float8) would
-- otherwise be chosen.
-- The step runs with its parameters as constants (a custom plan), so every expression of
-- parameters alone is folded before a row is read. Two forms:
--  * fenced (a local table): each layer a subquery, the row in model space computed once, the
--    squared distance to each centroid as written;
--  * shipped (foreign tables): one flat query, as postgres_fdw ships an aggregate only over a
--    foreign table itself, so every use of a layer's column repeats its expression. The centroid
--    is then chosen by |v|^2 - 2 v.c + |c|^2 without |v|^2 (one multiply-add per column and
--    centroid, on the column's value), and the distance is only summed when asked.
-- (max_categories was added: the old signature goes)
DROP FUNCTION IF EXISTS ml.step_function_body(text[], text, regprocedure, jsonb, int, boolean);
CREATE OR REPLACE FUNCTION ml.step_function_body(p_queries text[], p_token text, p_function regprocedure, p_exclude jsonb, p_k int, p_max_categories int, p_fence boolean)
RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  cols record;
  inner_cols text[] := '{}';  -- the innermost layer: per numeric column x<i> (NULL as the mean) and v<i>, per categorical g<j>
  vs text[] := '{}';
  stat_cols text[] := '{}';   -- the statistics' layer: per numeric column v<i> and f<i> (1 when not NULL)
  stat_sums text[] := '{}';
  stat_filled text[] := '{}';
  stat_squares text[] := '{}';
  stats text[] := '{}';
  gs text[] := '{}';
  scores text[] := '{}';      -- per centroid, what the nearest one minimizes
  m int := 0;
  r int := 0;
  val text;
  vexpr text;                 -- a numeric column in model space: centred, scaled, NULL as 0
  mn text;
  vsq text;
  counts text;
  -- a volatile function in a layer keeps it a subquery (PostgreSQL does not flatten it), and,
  -- unlike OFFSET 0, lets parallel workers run the step
  fence text := CASE WHEN p_fence THEN 'pg_catalog.clock_timestamp() AS fence, ' ELSE '' END;
  branches text[] := '{}';
  q text;
  body text;
BEGIN
  FOR cols IN SELECT * FROM ml.step_columns(p_function, p_exclude) ORDER BY ord LOOP
    IF cols.kind = 'n' THEN
      m := m + 1;
      vexpr := format('(CASE WHEN q.%1$I IS NULL THEN $2[%2$s] ELSE q.%1$I::pg_catalog.float8 END - $2[%2$s]) * $3[%2$s] AS v%2$s', cols.col, m);
      inner_cols := inner_cols || format('CASE WHEN q.%1$I IS NULL THEN $2[%2$s] ELSE q.%1$I::pg_catalog.float8 END AS x%2$s', cols.col, m) || vexpr;
      vs := vs || format('v%s', m);
      stat_cols := stat_cols || vexpr || format('CASE WHEN q.%1$I IS NULL THEN 0::pg_catalog.float8 ELSE 1::pg_catalog.float8 END AS f%2$s', cols.col, m);
      stat_sums := stat_sums || format('pg_catalog.sum(u.v%s)', m);
      stat_filled := stat_filled || format('pg_catalog.sum(u.f%s)', m);
      stat_squares := stat_squares || format('pg_catalog.sum(u.v%1$s * u.v%1$s)', m);
    ELSE
      r := r + 1;
      val := CASE cols.kind WHEN 'd' THEN format('CASE WHEN q.%1$I BETWEEN ''0001-01-01''::pg_catalog.date AND ''9999-12-31''::pg_catalog.date THEN pg_catalog.to_char(q.%1$I, ''YYYY-MM-DD''::pg_catalog.text) ELSE q.%1$I::pg_catalog.text END', cols.col)
                            ELSE format('q.%I::pg_catalog.text', cols.col) END;
      inner_cols := inner_cols || format('CASE WHEN q.%1$I IS NULL THEN $7[%2$s] WHEN pg_catalog.array_position($5, %3$L::pg_catalog.text || %4$s) IS NULL THEN $8[%2$s] ELSE $6[pg_catalog.array_position($5, %3$L::pg_catalog.text || %4$s)] END AS g%2$s',
                                         cols.col, r, r || ':', val);
      gs := gs || format('g%s', r);
    END IF;
  END LOOP;
  IF m + r = 0 THEN
    PERFORM ml.invalid('no feature columns are left after "exclude": the training query must have at least one other column');
  END IF;
  -- bounds checked before any text is built: the text grows with clusters x columns x queries
  -- and categorical columns x max_categories, and so does what a step returns
  IF p_k * (m + r) > 20000 THEN
    PERFORM ml.invalid(format('"training_mode": "in_database" takes at most 20,000 clusters x feature columns (the step''s text grows with them); this model has %s x %s: train in memory', p_k, m + r));
  END IF;
  IF r * p_max_categories > 2000 THEN
    PERFORM ml.invalid(format('"training_mode": "in_database" counts at most 2,000 categories per step (categorical columns x max_categories); this request has %s x %s: lower "max_categories" or train in memory', r, p_max_categories));
  END IF;
  IF cardinality(p_queries) * (p_k * (m + r) * 90 + r * p_max_categories * 80) > 1000000 THEN
    PERFORM ml.invalid(format('"training_mode": "in_database" would run more than 1 MB of SQL per step (%s queries x %s clusters x %s columns, %s categories counted); use fewer, or train in memory',
                              cardinality(p_queries), p_k, m + r, r * p_max_categories));
  END IF;
  -- the row's squared norm in model space: its numeric values, and 1 per category it has
  vsq := concat_ws(' + ', (SELECT string_agg(format('u.v%1$s * u.v%1$s', i), ' + ' ORDER BY i) FROM generate_series(1, m) i),
                          (SELECT string_agg(format('CASE WHEN u.g%s > 0 THEN 1::pg_catalog.float8 ELSE 0::pg_catalog.float8 END', j), ' + ' ORDER BY j) FROM generate_series(1, r) j));
  FOR c IN 1..p_k LOOP
    IF p_fence THEN
      scores := scores || concat_ws(' + ',
        (SELECT string_agg(format('(u.v%1$s - $1[%2$s][$4[%1$s]]) * (u.v%1$s - $1[%2$s][$4[%1$s]])', i, c), ' + ' ORDER BY i) FROM generate_series(1, m) i),
        format('$9[%s]', c),
        (SELECT string_agg(format('CASE WHEN u.g%1$s > 0 THEN 1::pg_catalog.float8 - 2::pg_catalog.float8 * $1[%2$s][u.g%1$s] ELSE 0::pg_catalog.float8 END', j, c), ' + ' ORDER BY j) FROM generate_series(1, r) j));
    ELSE
      -- |c|^2 + 2 sum(mean * (1/scale) * c) is one constant per centroid
      scores := scores || concat_ws(' + ',
        format('(%s)', concat_ws(' + ', format('$9[%s]', c),
          (SELECT string_agg(format('$1[%2$s][$4[%1$s]] * ($1[%2$s][$4[%1$s]] + 2::pg_catalog.float8 * $2[%1$s] * $3[%1$s])', i, c), ' + ' ORDER BY i) FROM generate_series(1, m) i))),
        (SELECT string_agg(format('u.x%1$s * (-2::pg_catalog.float8 * $3[%1$s] * $1[%2$s][$4[%1$s]])', i, c), ' + ' ORDER BY i) FROM generate_series(1, m) i),
        (SELECT string_agg(format('CASE WHEN u.g%1$s > 0 THEN -2::pg_catalog.float8 * $1[%2$s][u.g%1$s] ELSE 0::pg_catalog.float8 END', j, c), ' + ' ORDER BY j) FROM generate_series(1, r) j));
    END IF;
  END LOOP;
  -- the smallest score by nested float8smaller(), its centroid the first that has it
  mn := format('t.d%s', p_k);
  FOR c IN REVERSE p_k - 1..1 LOOP
    mn := format('pg_catalog.float8smaller(t.d%s, %s)', c, mn);
  END LOOP;
  -- per categorical column, the rows of each of its categories (a one-hot dimension's sum)
  counts := CASE WHEN r = 0 THEN '''{}''::pg_catalog.float8[]' ELSE format('ARRAY[%s]::pg_catalog.float8[]',
              (SELECT string_agg(format('(pg_catalog.count(*) FILTER (WHERE s.g%1$s = $11[%1$s] + %2$s))::pg_catalog.float8', j, h), ', ' ORDER BY j, h)
                 FROM generate_series(1, r) j, generate_series(1, p_max_categories) h)) END;
  FOREACH q IN ARRAY p_queries LOOP
    branches := branches || format(
      E'SELECT s.c, %s, pg_catalog.count(*)::pg_catalog.float8, %s, pg_catalog.sum(s.vsq), pg_catalog.sum(CASE WHEN $10 THEN pg_catalog.sqrt(%s) END), NULL::pg_catalog.float8[], NULL::pg_catalog.float8[]\n'
      '  FROM (SELECT %s, t.vsq, pg_catalog.array_position(ARRAY[%s], %s) AS c, %s AS dmin\n'
      '          FROM (SELECT u.*, %s%s AS vsq,\n                       %s\n'
      '                  FROM (SELECT %s%s\n'
      '                          FROM (\n%s\n) q) u) t) s\n'
      ' GROUP BY s.c',
      counts,
      CASE WHEN m = 0 THEN '''{}''::pg_catalog.float8[]' ELSE format('ARRAY[%s]::pg_catalog.float8[]', (SELECT string_agg(format('pg_catalog.sum(s.%s)', v), ', ') FROM unnest(vs) v)) END,
      -- the distance: the smallest squared distance, or the smallest score plus |v|^2 (never below 0)
      CASE WHEN p_fence THEN 's.dmin' ELSE 'pg_catalog.float8larger(s.vsq + s.dmin, 0::pg_catalog.float8)' END,
      (SELECT string_agg('t.' || x, ', ') FROM unnest(vs || gs) x),
      (SELECT string_agg(format('t.d%s', c), ', ') FROM generate_series(1, p_k) c), mn, mn,
      replace(fence, 'fence', 'fence_t'), vsq,
      (SELECT string_agg(format('%s AS d%s', x, o), E',\n                       ') FROM unnest(scores) WITH ORDINALITY AS z(x, o)),
      replace(fence, 'fence', 'fence_u'), array_to_string(inner_cols, E',\n                         '),
      ml.strip_query(q));
    -- the standardization's statistics: one row per query, no centroid
    stats := stats || format(
      E'SELECT 1, ''{}''::pg_catalog.float8[], pg_catalog.count(*)::pg_catalog.float8, %s, NULL::pg_catalog.float8, NULL::pg_catalog.float8, %s, %s\n'
      '  FROM (SELECT %s\n          FROM (\n%s\n) q) u',
      CASE WHEN m = 0 THEN '''{}''::pg_catalog.float8[]' ELSE format('ARRAY[%s]::pg_catalog.float8[]', array_to_string(stat_sums, ', ')) END,
      CASE WHEN m = 0 THEN '''{}''::pg_catalog.float8[]' ELSE format('ARRAY[%s]::pg_catalog.float8[]', array_to_string(stat_filled, ', ')) END,
      CASE WHEN m = 0 THEN '''{}''::pg_catalog.float8[]' ELSE format('ARRAY[%s]::pg_catalog.float8[]', array_to_string(stat_squares, ', ')) END,
      CASE WHEN m = 0 THEN '1 AS one' ELSE array_to_string(stat_cols, E',\n                 ') END,
      ml.strip_query(q));
  END LOOP;
  body := format(E'#variable_conflict use_column\nBEGIN\n  IF ml.reading(%L) THEN\n    IF $12 THEN\n      RETURN QUERY\n%s;\n    ELSE\n      RETURN QUERY\n%s;\n    END IF;\n  END IF;\nEND',
                 p_token, array_to_string(stats, E'\n    UNION ALL\n'), array_to_string(branches, E'\n    UNION ALL\n'));
  IF length(body) > 1000000 THEN
    PERFORM ml.invalid(format('"training_mode": "in_database" would run %s MB of SQL per step (clusters x columns x partitions, and max_categories per categorical column); use fewer, or train in memory',
                              round(length(body) / 1e6, 1)));
  END IF;
  RETURN body;
END $$;

-- The plan of a training view reads one partitioned table row by row (scans, filters, sorts;
-- no aggregate, join, limit, window or set operation above them)?
CREATE OR REPLACE FUNCTION ml.plan_is_row_wise(p_plan json) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
BEGIN
  RETURN p_plan ->> 'Node Type' IN ('Append', 'Merge Append', 'Foreign Scan', 'Seq Scan', 'Index Scan', 'Index Only Scan',
                                   'Bitmap Heap Scan', 'Bitmap Index Scan', 'BitmapAnd', 'BitmapOr', 'Subquery Scan', 'Result',
                                   'Sort', 'Incremental Sort', 'Gather', 'Gather Merge')
     AND coalesce(p_plan ->> 'Operation', 'Select') = 'Select'
     AND coalesce(p_plan ->> 'Relations', '') NOT LIKE '%Aggregate%'
     AND NOT EXISTS (SELECT 1 FROM json_array_elements(coalesce(p_plan -> 'Plans', '[]')) c WHERE NOT ml.plan_is_row_wise(c));
END $$;

-- A partition's query: the bound query with the partition named instead of the partitioned
-- table (whose qualified name must occur in it exactly once). The deparsed FROM item is the
-- table's name, then its alias when the query gave one (the query's columns are qualified by
-- it, or by the table's name when there is none). NULL when the name does not occur once.
CREATE OR REPLACE FUNCTION ml.partition_query(p_bound text, p_table regclass, p_leaf regclass) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  qualified text;
  relname text;
  leaf text := (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_leaf);
  at int;
BEGIN
  SELECT format('%I.%I', n.nspname, c.relname), c.relname INTO qualified, relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_table;
  -- only plain names, and a text with no comment (PostgreSQL's deparse has none): the partition's
  -- text then differs from the training function's in the one name only
  IF qualified IS NULL OR leaf IS NULL OR (length(p_bound) - length(replace(p_bound, qualified, ''))) <> length(qualified)
     OR qualified !~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$' OR leaf !~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$'
     OR strpos(p_bound, '--') > 0 OR strpos(p_bound, '/*') > 0 THEN
    RETURN NULL;
  END IF;
  at := strpos(p_bound, qualified);
  RETURN overlay(p_bound PLACING leaf || CASE WHEN substr(p_bound, at + length(qualified)) ~ '^ (?!TABLESAMPLE\M)[^\s]' THEN '' ELSE ' ' || quote_ident(relname) END
                 FROM at FOR length(qualified));
END $$;

-- The leaves of a partitioned table, in the order the step's queries follow.
CREATE OR REPLACE FUNCTION ml.partition_leaves(p_table regclass) RETURNS SETOF regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT t.relid FROM pg_partition_tree(p_table) t WHERE t.isleaf ORDER BY t.relid::oid
$$;

-- The queries a step aggregates: the training query itself, or, when it reads one partitioned
-- table with foreign partitions row by row, the same query once per partition (PostgreSQL 15-17
-- do not ship a partial aggregate to a foreign partition, but ship a whole one over a foreign
-- table). Each partition's query (ml.partition_query) is made into a view for a moment to check
-- that it reads that partition only and has the same columns; anything else keeps the one query,
-- as does a table with row security or a partition the requester may not read directly.
-- Returns the queries and the partitioned table they split (NULL: one query). Runs as the requester.
DROP FUNCTION IF EXISTS ml.step_queries(regclass, text, text);
CREATE OR REPLACE FUNCTION ml.step_queries(p_view regclass, p_token text, p_bound text, OUT queries text[], OUT split regclass)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel oid;
  plan json;
  leaf regclass;
  rels oid[];
  s name := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_view);
  probe regclass;
  part text;
  same boolean;
BEGIN
  queries := ARRAY[p_bound];
  SELECT array_agg(DISTINCT d.refobjid) INTO rels FROM pg_rewrite w JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
   WHERE w.ev_class = p_view AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> p_view;
  IF cardinality(rels) IS DISTINCT FROM 1 THEN RETURN; END IF;
  rel := rels[1];
  IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = rel AND c.relkind = 'p')
     OR NOT EXISTS (SELECT 1 FROM pg_partition_tree(rel) t JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf AND c.relkind = 'f')
     OR (SELECT count(*) FROM pg_partition_tree(rel) t WHERE t.isleaf) > 64
     -- read directly, a partition answers to its own privileges and row security, not the table's
     OR EXISTS (SELECT 1 FROM pg_partition_tree(rel) t JOIN pg_class c ON c.oid = t.relid
                 WHERE c.relrowsecurity OR (t.isleaf AND NOT has_table_privilege(c.oid, 'SELECT')))
     OR ml.partition_query(p_bound, rel::regclass, rel::regclass) IS NULL THEN
    RETURN;
  END IF;
  EXECUTE format('EXPLAIN (FORMAT JSON, COSTS OFF) SELECT * FROM %s', p_view) INTO plan;
  IF NOT ml.plan_is_row_wise(plan -> 0 -> 'Plan') THEN RETURN; END IF;
  FOR leaf IN SELECT * FROM ml.partition_leaves(rel::regclass) LOOP
    part := ml.partition_query(p_bound, rel::regclass, leaf);
    BEGIN
      EXECUTE format('CREATE VIEW %I.%I AS %s', s, 'p_' || p_token, part);
      probe := to_regclass(format('%I.%I', s, 'p_' || p_token));
      same := (SELECT array_agg(DISTINCT d.refobjid) FROM pg_rewrite w JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
                WHERE w.ev_class = probe AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> probe) = ARRAY[leaf::oid]
              AND (SELECT array_agg((a.attname, a.atttypid, a.atttypmod) ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = probe AND a.attnum > 0)
                = (SELECT array_agg((a.attname, a.atttypid, a.atttypmod) ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = p_view AND a.attnum > 0);
      EXECUTE format('DROP VIEW %s', probe);
    EXCEPTION WHEN OTHERS THEN
      same := false;
    END;
    IF NOT same THEN
      queries := ARRAY[p_bound];
      RETURN;
    END IF;
    IF split IS NULL THEN queries := '{}'; END IF;
    split := rel::regclass;
    queries := queries || part;
  END LOOP;
END $$;

-- The step's queries ml_create_model passes to ml.enqueue_training are the bound query, or its
-- partition queries of the table named: nothing else (the step function's text follows them).
CREATE OR REPLACE FUNCTION ml.step_queries_valid(p_queries text[], p_split regclass, p_bound text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT coalesce(CASE WHEN p_queries IS NULL THEN p_split IS NULL
                       WHEN p_split IS NULL THEN p_queries = ARRAY[p_bound]
                       ELSE cardinality(p_queries) <= 64 AND array_position(p_queries, NULL) IS NULL
                            AND p_queries = ARRAY(SELECT ml.partition_query(p_bound, p_split, l) FROM ml.partition_leaves(p_split) l) END, false)
$$;

-- What ml_create_model records for an in-database model: the step's queries, the table they
-- split, and whether the step keeps its layers apart (a single query that reads no foreign or
-- distributed table; see step_function_body).
DROP FUNCTION IF EXISTS ml.step_plan(regclass, text, text);
CREATE OR REPLACE FUNCTION ml.step_plan(p_view regclass, p_token text, p_bound text, OUT queries text[], OUT split regclass, OUT fenced boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE plan json;
BEGIN
  SELECT x.queries, x.split INTO queries, split FROM ml.step_queries(p_view, p_token, p_bound) x;
  EXECUTE format('EXPLAIN (FORMAT JSON, COSTS OFF) SELECT * FROM %s', p_view) INTO plan;
  -- a foreign table (postgres_fdw) or a distributed one (Citus: a Custom Scan) gets the flat form
  fenced := split IS NULL AND plan::text NOT LIKE '%"Foreign Scan"%' AND plan::text NOT LIKE '%"Custom Scan"%';
END $$;

-- The step function's text for a request's options (made at enqueue, checked before each step).
CREATE OR REPLACE FUNCTION ml.step_body_for(p_queries text[], p_token text, p_function regprocedure, p_options jsonb, p_fenced boolean)
RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT ml.step_function_body(p_queries, p_token, p_function, p_options -> 'exclude', (p_options ->> 'num_clusters')::int,
                               coalesce((p_options ->> 'max_categories')::int, 100), p_fenced)
$$;

-- Makes the requester's step function next to the training function p_function (same schema,
-- owner, search_path and grants). Runs as the requester.
DROP FUNCTION IF EXISTS ml.make_step_function(regprocedure, text, text[], boolean, jsonb, name[]);
CREATE OR REPLACE FUNCTION ml.make_step_function(p_function regprocedure, p_token text, p_queries text[], p_fenced boolean, p_options jsonb, p_schemas name[])
RETURNS regprocedure LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s name := (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = p_function);
  args text := 'float8[], float8[], float8[], int[], text[], int[], int[], int[], float8[], boolean, int[], boolean';
  f regprocedure;
BEGIN
  EXECUTE format('CREATE FUNCTION %I.%I(%s)
                  RETURNS TABLE (c int, cats float8[], n float8, sums float8[], squares float8, spread float8, filled float8[], column_squares float8[])
                  LANGUAGE plpgsql SECURITY DEFINER SET search_path = %s AS %L',
                 s, 'a_' || p_token, args, ml.training_search_path(p_schemas),
                 ml.step_body_for(p_queries, p_token, p_function, p_options, p_fenced));
  f := to_regprocedure(format('%I.%I(%s)', s, 'a_' || p_token, args));
  EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
  EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, ml.reader_role());
  RETURN f;
END $$;

-- A k-means request that could train in the database although it did not ask to: the sidecar
-- then chooses in-database when the rows read foreign tables or would exceed its memory
-- budget (docs/scale.md). Its step function is made at enqueue when its columns allow.
CREATE OR REPLACE FUNCTION ml.in_database_possible(p_type text, p_options jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT lower(btrim(p_type)) = 'kmeans' AND NOT p_options ? 'training_mode'
     AND jsonb_typeof(p_options -> 'num_clusters') = 'number' AND (p_options ->> 'num_clusters')::numeric <= 256
     AND NOT p_options ?| ARRAY['batch_size', 'warm_start', 'output_table', 'kmeans_init_col']
     AND lower(coalesce(p_options ->> 'distance_type', 'euclidean')) = 'euclidean'
$$;
