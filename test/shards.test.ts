import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePool, type Pool } from '../src/db/connect.ts';
import { startEmbedded, type EmbeddedServer } from '../src/db/embedded.ts';
import { withUser } from '../src/db/roles.ts';
import { makeSpace } from '../src/models/kmeans/geometry.ts';
import { lloyd } from '../src/models/kmeans/lloyd.ts';
import { freshDatabase, rows, type TestDb } from './helpers.ts';
import { freePort } from './processes.ts';

// In-database k-means on real sharding: three PostgreSQL servers, the test's database as the
// coordinator and two shards, a table partitioned by hash whose partitions are postgres_fdw
// foreign tables on the shards. An analyst (no superuser) trains on it; each Lloyd step's
// aggregate runs on the shards (the Remote SQL has the GROUP BY, a handful of rows come back),
// and the centroids are the in-memory Lloyd's from the same initial centroids.

const ROWS = 60_000;
let t: TestDb;
let dir: string;
const shards: EmbeddedServer[] = [];
let analyst: Pool;
const role = `shard_analyst_${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sqlml-shards-'));
  chmodSync(dir, 0o755); // the postgres system user must reach the data folders inside
  for (const i of [1, 2]) shards.push(await startEmbedded({ dataDir: join(dir, `shard${i}`), port: await freePort(), persistent: false }));
  t = await freshDatabase('shards');
  await t.worker({ maxMemoryMb: 4 }); // a small budget: a larger training set goes in-database by itself
  for (const [i, s] of shards.entries()) {
    const c = makePool(s.url, 1);
    await c.query(`CREATE TABLE public.customers_${i} (id int PRIMARY KEY, spend float8, visits float8, tenure numeric, region text)`);
    await c.end();
  }
  await t.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; CREATE EXTENSION IF NOT EXISTS postgres_fdw`);
  await t.pool.query(`CREATE TABLE public.customers (id int, spend float8, visits float8, tenure numeric, region text) PARTITION BY HASH (id)`);
  for (const [i, s] of shards.entries()) {
    const u = new URL(s.url);
    await t.pool.query(`CREATE SERVER shard_${i} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '${u.hostname}', port '${u.port}', dbname 'postgres', async_capable 'true', batch_size '1000')`);
    await t.pool.query(`CREATE USER MAPPING FOR PUBLIC SERVER shard_${i} OPTIONS (user 'postgres', password 'postgres')`);
    await t.pool.query(`CREATE FOREIGN TABLE public.customers_p${i} PARTITION OF public.customers FOR VALUES WITH (MODULUS 2, REMAINDER ${i})
                          SERVER shard_${i} OPTIONS (table_name 'customers_${i}')`);
  }
  // the rows go to the shards through the partitioned table (postgres_fdw inserts in batches)
  await t.pool.query(`INSERT INTO public.customers
    SELECT i, (i % 7) * 3 + sin(i * 1.7), (i % 5) + cos(i * 0.3), CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 4) * 1.5 END,
           (ARRAY['north', 'south', 'east', 'west', NULL])[1 + i % 5]
      FROM generate_series(1, ${ROWS}) i`);
  // the analyst reads the table and, as sqlml then runs one aggregate per partition, its partitions
  await t.pool.query(`GRANT SELECT ON public.customers, public.customers_p0, public.customers_p1 TO ${role}`);
  analyst = makePool(withUser(t.url, role, 'pw'), 2);
}, 180_000);

afterAll(async () => {
  await analyst?.end();
  await t?.close();
  await t?.pool.query(`DROP OWNED BY ${role}`).catch(() => undefined);
  for (const s of shards) await s.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('in-database k-means on a table partitioned across two postgres_fdw shards', () => {
  it('runs each Lloyd step on the shards and ends at the in-memory Lloyd’s centroids (1e-9)', async () => {
    await analyst.query(`CALL ml_train('sharded', 'kmeans', 'SELECT spend, visits, tenure, region FROM public.customers', '{"num_clusters": 4, "training_mode": "in_database", "seed": 5}')`);
    const [m] = await rows<{ artifact: { centroids: number[][]; features: any[]; dims: number }; metrics: any; step_queries: string[]; fn: string }>(t.pool,
      `SELECT m.artifact, m.metrics, j.step_queries, format('%I.%I', n.nspname, 'a_' || j.query_token) AS fn
         FROM ml.models m JOIN ml.jobs j ON j.id = m.job_id JOIN pg_proc p ON p.oid = j.query_function JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE m.model_name = 'sharded'`);
    expect(m!.metrics.training_mode).toBe('in_database');
    expect(m!.metrics.rows).toBe(ROWS);
    expect(m!.metrics.sample_rows).toBeLessThan(ROWS / 2); // the sidecar held a sample
    // one aggregate per foreign partition, each naming its partition
    expect(m!.step_queries).toHaveLength(2);
    expect(m!.step_queries[0]).toMatch(/public\.customers_p[01]/);
    expect(m!.step_queries[1]).toMatch(/public\.customers_p[01]/);

    // The step's own query, planned by the coordinator with the final centroids: each
    // partition's aggregate is a Foreign Scan whose Remote SQL groups, and returns a few rows.
    const [{ src }] = await rows<{ src: string }>(t.pool, `SELECT prosrc AS src FROM pg_proc WHERE oid = to_regproc($1)`, [m!.fn]);
    const query = /ELSE\n {6}RETURN QUERY\n([\s\S]*);\n {4}END IF;/.exec(src)![1]!;
    const statsQuery = /IF \$12 THEN\n {6}RETURN QUERY\n([\s\S]*?);\n {4}ELSE/.exec(src)![1]!;
    const { artifact } = m!;
    const d = artifact.dims;
    const c = makePool(t.url, 1);
    await c.query(`PREPARE step(float8[], float8[], float8[], int[], text[], int[], int[], int[], float8[], boolean, int[], boolean) AS ${query}`);
    await c.query(`PREPARE stats(float8[], float8[], float8[], int[], text[], int[], int[], int[], float8[], boolean, int[], boolean) AS ${statsQuery}`);
    const params = stepParameters(artifact);
    const [{ call }] = (await c.query(`SELECT format('EXECUTE step(%L, %L, %L, %L, %L, %L, %L, %L, %L, false, %L, false)', $1::float8[], $2::float8[], $3::float8[], $4::int[], $5::text[], $6::int[], $7::int[], $8::int[], $9::float8[], $10::int[]) AS call`, params)).rows;
    const plan = (await c.query(`EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) ${call}`)).rows[0]['QUERY PLAN'][0].Plan;
    // the standardization's statistics ($12): one aggregate per partition too, a row back from each
    const statsPlan = (await c.query(`EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) ${call.replace(/^EXECUTE step\(/, 'EXECUTE stats(').replace(/, false\)$/, ', true)')}`)).rows[0]['QUERY PLAN'][0].Plan;
    await c.end();
    const foreign = scans(plan);
    expect(foreign).toHaveLength(2);
    for (const f of foreign) {
      expect(f['Remote SQL']).toMatch(/GROUP BY/);
      expect(f['Relations']).toMatch(/Aggregate on \(public\.customers_p[01]/);
      expect(f['Actual Rows']).toBeLessThanOrEqual(4); // a row per cluster, not the shard's ~30,000 rows
    }
    const statScans = scans(statsPlan);
    expect(statScans).toHaveLength(2);
    for (const f of statScans) {
      expect(f['Relations']).toMatch(/Aggregate on \(public\.customers_p[01]/);
      expect(f['Remote SQL']).toMatch(/IS NULL/);
      expect(f['Actual Rows']).toBe(1);
    }

    // the in-memory Lloyd from the same initial centroids, over every row
    const data = await rows<{ spend: number; visits: number; tenure: string | null; region: string | null }>(t.pool, 'SELECT spend, visits, tenure, region FROM public.customers');
    // the standardization is every row's (one aggregate), not the sample's: each numeric
    // column's mean and population standard deviation over its non-NULL values
    for (const f of artifact.features.filter((x) => x.kind === 'numeric')) {
      const values = data.map((r) => (r as any)[f.name]).filter((v) => v !== null).map(Number);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
      expect(Math.abs(f.mean - mean), `${f.name}: mean`).toBeLessThan(1e-12 * Math.max(1, Math.abs(mean)));
      expect(Math.abs(f.scale - std), `${f.name}: standard deviation`).toBeLessThan(1e-12 * std);
    }
    const X = new Float64Array(data.length * d);
    data.forEach((r, i) => {
      for (const f of artifact.features) {
        const v = (r as any)[f.name];
        if (f.kind === 'numeric') X[i * d + f.offset] = ((v === null ? f.mean : Number(v)) - f.mean) / f.scale;
        else X[i * d + f.offset + f.categories.indexOf(v)] = 1;
      }
    });
    const init = Float64Array.from((m!.metrics.initial_centroids as number[][]).flat());
    const ref = await lloyd(makeSpace(X, data.length, d, 'euclidean'), init, 4, { maxIterations: 300, earlyStop: true, minRelProgress: 0.00001 });
    artifact.centroids.flat().forEach((v, i) => expect(Math.abs(v - ref.centroids[i]!)).toBeLessThan(1e-9));
    const sizes = new Array(4).fill(0);
    for (const l of ref.labels) sizes[l]++;
    expect(m!.metrics.cluster_sizes).toEqual(sizes);
    // the last pass's distances: Davies-Bouldin from each cluster's mean distance, computed here
    const avg = new Array(4).fill(0);
    ref.labels.forEach((l, i) => (avg[l] += Math.sqrt(ref.dist2[i]!) / sizes[l]));
    const C = ref.centroids;
    const dist = (a: number, b: number) => Math.hypot(...Array.from({ length: d }, (_, j) => C[a * d + j]! - C[b * d + j]!));
    const db = [0, 1, 2, 3].reduce((acc, a) => acc + Math.max(...[0, 1, 2, 3].filter((b) => b !== a).map((b) => (avg[a] + avg[b]) / dist(a, b))), 0) / 4;
    expect(m!.metrics.davies_bouldin_index).toBeCloseTo(db, 8);
    expect(m!.metrics.mean_squared_distance).toBeCloseTo(ref.loss, 9);
    // what comes back per step: per partition and centroid a row of sums, not rows
    expect(m!.metrics.bytes_per_iteration).toBeLessThan(10_000);
    const steps = await rows<{ training_mode: string; bytes_moved: string; duration_ms: number }>(analyst, `SELECT training_mode, bytes_moved, duration_ms FROM ml_training_info('sharded')`);
    expect(steps.length).toBeGreaterThan(0);
    for (const s of steps) {
      expect(s.training_mode).toBe('in_database');
      expect(Number(s.bytes_moved)).toBeGreaterThan(0);
      expect(Number(s.bytes_moved)).toBeLessThan(10_000);
      expect(s.duration_ms).toBeGreaterThan(0);
    }

    // a generated function scores on the coordinator like any other
    const [{ segments }] = await rows<{ segments: number }>(analyst, `SELECT count(DISTINCT sharded_predict(spend, visits, tenure, region))::int AS segments FROM public.customers`);
    expect(segments).toBe(4);
  });

  it('keeps one query when the training query does not read the table row by row (LIMIT), and its step still runs', async () => {
    await analyst.query(`CALL ml_train('limited', 'kmeans', 'SELECT c.spend, c.visits FROM public.customers c ORDER BY c.id LIMIT 20000', '{"num_clusters": 3, "training_mode": "in_database", "seed": 2}')`);
    const [m] = await rows<{ n: number; metrics: any }>(t.pool,
      `SELECT cardinality(j.step_queries) AS n, m.metrics FROM ml.models m JOIN ml.jobs j ON j.id = m.job_id WHERE m.model_name = 'limited'`);
    expect(m!.n).toBe(1);
    expect(m!.metrics.rows).toBe(20000);
  });

  it('chooses in-database by itself for foreign tables, and for a local table over the memory budget', async () => {
    await analyst.query(`CALL ml_train('auto_fdw', 'kmeans', 'SELECT spend, visits FROM public.customers', '{"num_clusters": 3, "seed": 2}')`);
    await t.pool.query(`CREATE TABLE public.local_rows AS SELECT i AS id, sin(i) AS a, cos(i) AS b FROM generate_series(1, 400000) i; GRANT SELECT ON public.local_rows TO ${role}`);
    await analyst.query(`CALL ml_train('auto_big', 'kmeans', 'SELECT a, b FROM public.local_rows', '{"num_clusters": 3, "seed": 2}')`); // 6.4 MB > 4 MB
    await analyst.query(`CALL ml_train('auto_small', 'kmeans', 'SELECT a, b FROM public.local_rows LIMIT 1000', '{"num_clusters": 3, "seed": 2}')`);
    const got = await rows<{ model_name: string; mode: string | null; reason: string | null }>(t.pool,
      `SELECT model_name, metrics ->> 'training_mode' AS mode, metrics ->> 'training_mode_reason' AS reason FROM ml.models WHERE model_name LIKE 'auto%' ORDER BY 1`);
    expect(got).toEqual([
      { model_name: 'auto_big', mode: 'in_database', reason: 'memory budget' },
      { model_name: 'auto_fdw', mode: 'in_database', reason: 'foreign tables' },
      { model_name: 'auto_small', mode: null, reason: null },
    ]);
  });

  it('splits an aliased, filtered query per partition', async () => {
    await analyst.query(`CALL ml_train('aliased', 'kmeans', 'SELECT c.spend, c.region FROM public.customers c WHERE c.visits > 1', '{"num_clusters": 3, "training_mode": "in_database", "seed": 2}')`);
    const [m] = await rows<{ queries: string[]; metrics: any }>(t.pool,
      `SELECT j.step_queries AS queries, m.metrics FROM ml.models m JOIN ml.jobs j ON j.id = m.job_id WHERE m.model_name = 'aliased'`);
    expect(m!.queries).toHaveLength(2);
    const [{ n }] = await rows<{ n: number }>(t.pool, 'SELECT count(*)::int AS n FROM public.customers c WHERE c.visits > 1');
    expect(m!.metrics.rows).toBe(n);
  });
});

describe('in-database k-means against another role', () => {
  it('runs none of its functions or operators planted on the requester’s search_path, in either form of the step', async () => {
    // a schema where another role may create, on the analyst's search_path when it enqueues (the
    // step function keeps that path; waiting runs with the analyst's own path, since ml_wait,
    // like every API function that runs the caller's SQL, needs a path others cannot plant on:
    // docs/security.md, known limits)
    const mallory = `mallory_${randomBytes(3).toString('hex')}`;
    await t.pool.query(`CREATE ROLE ${mallory} LOGIN PASSWORD 'pw'; CREATE SCHEMA shared; GRANT CREATE, USAGE ON SCHEMA shared TO PUBLIC`);
    const train = async (name: string, query: string) => {
      const c = await analyst.connect();
      try {
        await c.query('SET search_path = "$user", public, shared');
        const { rows: [{ job }] } = await c.query(`SELECT ml_create_model($1, 'kmeans', $2, '{"num_clusters": 3, "training_mode": "in_database", "seed": 1}') AS job`, [name, query]);
        await c.query('RESET search_path');
        await c.query('SELECT ml_wait($1)', [job]);
      } finally {
        c.release();
      }
    };
    const M = makePool(withUser(t.url, mallory, 'pw'), 1);
    // better matches than the catalog's for what a step computes, were its names not qualified
    const traps = [
      `FUNCTION shared.array_position(a float8[], e float8) RETURNS int`,
      `FUNCTION shared.array_position(a text[], e text) RETURNS int`,
      `FUNCTION shared.to_char(a date, b text) RETURNS text`,
      `FUNCTION shared.float8larger(a float8, b numeric) RETURNS float8`,
      `FUNCTION shared.float8smaller(a float8, b numeric) RETURNS float8`,
      `FUNCTION shared.sqrt(a numeric) RETURNS numeric`,
      `FUNCTION shared.trap_mul(a numeric, b float8) RETURNS float8`,
      `FUNCTION shared.trap_add(a float8, b numeric) RETURNS float8`,
      `FUNCTION shared.trap_sub(a numeric, b float8) RETURNS float8`,
    ];
    try {
      for (const f of traps) await M.query(`CREATE ${f} LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'captured by ${mallory}'; END $f$`);
      await M.query(`CREATE OPERATOR shared.* (LEFTARG = numeric, RIGHTARG = float8, FUNCTION = shared.trap_mul);
                     CREATE OPERATOR shared.+ (LEFTARG = float8, RIGHTARG = numeric, FUNCTION = shared.trap_add);
                     CREATE OPERATOR shared.- (LEFTARG = numeric, RIGHTARG = float8, FUNCTION = shared.trap_sub)`);
      await t.pool.query(`CREATE TABLE public.dated AS SELECT i::float8 AS x, (ARRAY['a', 'b', NULL])[1 + i % 3] AS kind, DATE '2024-01-01' + i % 5 AS day, i % 2 = 0 AS flag
                            FROM generate_series(1, 5000) i; GRANT SELECT ON public.dated TO ${role}`);
      await train('trapped_local', 'SELECT x, kind, day, flag FROM public.dated');
      await train('trapped_fdw', 'SELECT spend, visits, tenure, region FROM public.customers');
      // the step functions were made with the planted schema on their path
      const [{ paths }] = await rows<{ paths: number }>(t.pool, `SELECT count(*)::int AS paths FROM pg_proc WHERE proname LIKE 'a\\_%' AND array_to_string(proconfig, ',') LIKE '%shared%'`);
      expect(paths).toBe(1); // (the first job's functions were dropped by the second ml_create_model)
      const got = await rows<{ model_name: string; fenced: boolean }>(t.pool,
        `SELECT m.model_name, j.step_fenced AS fenced FROM ml.models m JOIN ml.jobs j ON j.id = m.job_id WHERE m.model_name LIKE 'trapped%' AND j.status = 'ready' ORDER BY 1`);
      expect(got).toEqual([{ model_name: 'trapped_fdw', fenced: false }, { model_name: 'trapped_local', fenced: true }]);
    } finally {
      await M.end();
      await t.pool.query(`DROP OWNED BY ${mallory}; DROP ROLE ${mallory}; DROP SCHEMA shared CASCADE`);
    }
  });

  it('accepts only the step queries ml_create_model makes (not SQL of the caller’s choosing)', async () => {
    const c = await analyst.connect();
    try {
      const s = (await c.query(`SELECT ml.request_schema(current_user) AS s`)).rows[0].s;
      const token = (await c.query(`SELECT ml.issue_token(current_user) AS t`)).rows[0].t;
      await c.query(`DO $d$ BEGIN EXECUTE ml.training_view_sql('${s}', '${token}', 'SELECT spend FROM public.customers'); END $d$`);
      const bound = (await c.query(`SELECT ml.bound_query(ml.view_of($1, $2)) AS b`, [s, token])).rows[0].b;
      const fn = (await c.query(`SELECT ml.make_training_function(ml.view_of($1, $2), $2, $3, current_schemas(false))::oid::int AS f`, [s, token, bound])).rows[0].f;
      const forged = `SELECT 1::float8 AS spend) q) u) t) s GROUP BY s.c UNION ALL SELECT 1, 0, '{}', 1, '{}', 0, 0 FROM generate_series(1, 10) g, (SELECT (SELECT (SELECT 1 AS x`;
      for (const [steps, split] of [[[forged], null], [[bound, bound], null], [[bound], 'public.customers']] as const) {
        const err = await c.query(`SELECT ml.enqueue_training($1::oid::regprocedure, $2, 0, 'forged', 'kmeans', '{"num_clusters": 2, "training_mode": "in_database"}', 'x', $3, $4, true, $5::regclass)`,
          [fn, token, bound, steps, split]).then(() => null, (e: Error) => e.message);
        expect(err).toMatch(/the in-database step's queries must be given as ml_create_model makes them/);
      }
      // a text of the caller's own (not PostgreSQL's deparse) with a comment is never split: a
      // partition's name could close the comment in the step function's text only
      const token2 = (await c.query(`SELECT ml.issue_token(current_user) AS t`)).rows[0].t;
      await c.query(`DO $d$ BEGIN EXECUTE ml.training_view_sql('${s}', '${token2}', 'SELECT spend FROM public.customers'); END $d$`);
      const raw = 'SELECT spend FROM public.customers -- a comment';
      const fn2 = (await c.query(`SELECT ml.make_training_function(ml.view_of($1, $2), $2, $3, current_schemas(false))::oid::int AS f`, [s, token2, raw])).rows[0].f;
      const parts = (await c.query(`SELECT array_agg(ml.partition_query($1, 'public.customers', l)) AS p FROM ml.partition_leaves('public.customers') l`, [raw])).rows[0].p;
      expect(parts).toEqual([null, null]);
      const err = await c.query(`SELECT ml.enqueue_training($1::oid::regprocedure, $2, 0, 'forged2', 'kmeans', '{"num_clusters": 2, "training_mode": "in_database"}', 'x', $3, $4, true, 'public.customers')`,
        [fn2, token2, raw, [raw.replace('public.customers', 'public.customers_p0 customers'), raw.replace('public.customers', 'public.customers_p1 customers')]]).then(() => null, (e: Error) => e.message);
      expect(err).toMatch(/the in-database step's queries must be given as ml_create_model makes them/);
    } finally {
      c.release();
    }
  });
});

/** The step function's parameters for a model's final centroids (as src/jobs/kmeans-in-database.ts sends them). */
function stepParameters(a: { centroids: number[][]; features: any[]; dims: number }): unknown[] {
  const num = a.features.filter((f) => f.kind === 'numeric');
  const region = a.features.find((f) => f.name === 'region');
  const kept = region.categories as (string | null)[];
  const catDims = kept.map((_, j) => region.offset + j + 1);
  const squares = a.centroids.map((c) => catDims.reduce((s, j) => s + c[j - 1]! ** 2, 0));
  return [
    `[1:${a.centroids.length}][0:${a.dims}]={${a.centroids.map((c) => `{0,${c.join(',')}}`).join(',')}}`,
    num.map((f) => f.mean), num.map((f) => 1 / f.scale), num.map((f) => f.offset + 1),
    kept.flatMap((v) => (v === null ? [] : [`1:${v}`])), kept.flatMap((v, j) => (v === null ? [] : [region.offset + j + 1])),
    [kept.includes(null) ? region.offset + kept.indexOf(null) + 1 : 0], [0], squares, [region.offset],
  ];
}

function scans(plan: any): any[] {
  return [...(plan['Node Type'] === 'Foreign Scan' ? [plan] : []), ...(plan.Plans ?? []).flatMap(scans)];
}
