import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSpace } from '../src/models/kmeans/geometry.ts';
import { lloyd } from '../src/models/kmeans/lloyd.ts';
import { errorOf, freshDatabase, rows, type TestDb } from './helpers.ts';

// Scoring where the data lives: ml_scoring_expression gives a k-means model's segment as one
// expression of built-in operators, the same segment as the generated function on every row,
// and postgres_fdw ships it to the server that holds the rows (a loopback foreign table here):
// with the GROUP BY of a segment count and as a direct UPDATE, where the generated function
// stays on the coordinator (it is not a built-in, so postgres_fdw will not send it).

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('scale');
  await t.worker();
  await t.pool.query(`CREATE TABLE public.customers AS
    SELECT i AS id, (i % 7) * 3 + sin(i * 1.7) AS spend, (i % 5) + cos(i * 0.3) AS visits,
           CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 4) * 1.5 END AS tenure,
           (ARRAY['north', 'south', 'east', 'west', NULL])[1 + i % 5] AS region, NULL::int AS segment
      FROM generate_series(1, 3000) i`);
  await t.pool.query(`ALTER TABLE public.customers ADD PRIMARY KEY (id)`);
  await t.pool.query(`CALL ml_train('seg', 'kmeans', 'SELECT spend, visits, tenure, region FROM public.customers', '{"num_clusters": 5, "seed": 3}')`);
});
afterAll(async () => t?.close());

describe('ml_scoring_expression', () => {
  it('gives the generated function’s segment on every row, NULLs and categories included', async () => {
    const [{ expr }] = await rows<{ expr: string }>(t.pool, `SELECT ml_scoring_expression('seg') AS expr`);
    expect(expr).not.toMatch(/seg_predict|ml\./);
    const [{ differ, n }] = await rows<{ differ: number; n: number }>(t.pool,
      `SELECT count(*) FILTER (WHERE (${expr}) IS DISTINCT FROM seg_predict(spend, visits, tenure, region))::int AS differ, count(*)::int AS n FROM public.customers`);
    expect(n).toBe(3000);
    expect(differ).toBe(0);
    expect((await errorOf(t.pool, `SELECT ml_scoring_expression('nope')`)).message).toMatch(/model "nope" does not exist/);
    // its text grows with k^2: a model of more clusters keeps none, and says what to use instead
    await t.pool.query(`CALL ml_train('wide_k', 'kmeans', 'SELECT spend, visits FROM public.customers', '{"num_clusters": 40, "seed": 1}')`);
    expect((await errorOf(t.pool, `SELECT ml_scoring_expression('wide_k')`)).message).toMatch(/too large for one \(more than 32 clusters/);
  });

  it('postgres_fdw evaluates it on the remote server, in a GROUP BY and as a direct UPDATE; the generated function stays local', async () => {
    const u = new URL(t.url);
    await t.pool.query(`CREATE EXTENSION IF NOT EXISTS postgres_fdw`);
    await t.pool.query(`CREATE SERVER shard FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '${u.hostname}', port '${u.port}', dbname '${u.pathname.slice(1)}')`);
    await t.pool.query(`CREATE USER MAPPING FOR CURRENT_USER SERVER shard OPTIONS (user '${decodeURIComponent(u.username)}', password '${decodeURIComponent(u.password)}')`);
    await t.pool.query(`CREATE FOREIGN TABLE public.remote_customers (id int, spend float8, visits float8, tenure numeric, region text, segment int)
                          SERVER shard OPTIONS (schema_name 'public', table_name 'customers')`);
    const [{ expr }] = await rows<{ expr: string }>(t.pool, `SELECT ml_scoring_expression('seg') AS expr`);
    const plan = async (sql: string) => JSON.stringify((await rows<{ 'QUERY PLAN': unknown }>(t.pool, `EXPLAIN (VERBOSE, FORMAT JSON) ${sql}`))[0]!['QUERY PLAN']);
    // segment sizes: the expression and the GROUP BY run on the server; only k rows come back
    const sizes = await plan(`SELECT ${expr} AS segment, count(*) FROM public.remote_customers GROUP BY 1`);
    expect(sizes).toMatch(/"Remote SQL":"SELECT \(CASE WHEN [^"]*, count\(\*\) FROM public.customers GROUP BY 1"/);
    const local = await plan(`SELECT seg_predict(spend, visits, tenure, region), count(*) FROM public.remote_customers GROUP BY 1`);
    expect(local).not.toMatch(/"Remote SQL":"[^"]*seg_predict/);
    expect(local).not.toMatch(/"Remote SQL":"[^"]*GROUP BY/);
    const update = await plan(`UPDATE public.remote_customers SET segment = ${expr}`);
    expect(update).toMatch(/"Operation":"Update"/);
    expect(update).toMatch(/"Remote SQL":"UPDATE public.customers SET segment = \(?CASE WHEN /); // a direct modification on the server
    await t.pool.query(`UPDATE public.remote_customers SET segment = ${expr}`);
    const [{ differ }] = await rows<{ differ: number }>(t.pool,
      `SELECT count(*) FILTER (WHERE segment IS DISTINCT FROM seg_predict(spend, visits, tenure, region))::int AS differ FROM public.customers`);
    expect(differ).toBe(0);
  });
});

describe('k-means in the database (training_mode in_database)', () => {
  it('moves the sample model’s centroids by Lloyd steps over every row as aggregates: the in-memory Lloyd from the same initial centroids ends at the same centroids (1e-9)', async () => {
    await t.pool.query(`CREATE TABLE public.many AS
      SELECT i AS id, (i % 5) * 2 + sin(i * 0.37) AS a, (i % 3) + cos(i * 1.1) AS b,
             CASE WHEN i % 13 = 0 THEN NULL ELSE (i % 7) * 0.5 END AS c, (ARRAY['x', 'y', 'z'])[1 + i % 3] AS cat
        FROM generate_series(1, 130000) i`);
    await t.pool.query(`CALL ml_train('many', 'kmeans', 'SELECT a, b, c, cat FROM public.many', '{"num_clusters": 4, "training_mode": "in_database", "seed": 5}')`);
    const [{ artifact, metrics }] = await rows<{ artifact: { centroids: number[][]; features: any[]; dims: number }; metrics: any }>(t.pool,
      `SELECT m.artifact, m.metrics FROM ml.models m WHERE model_name = 'many'`);
    expect(metrics.training_mode).toBe('in_database');
    expect(metrics.rows).toBe(130000);
    expect(metrics.sample_rows).toBeLessThan(130000); // the sidecar held a sample, not the rows
    // every row in the model's space, as the model's own feature preparation defines it
    const data = await rows<{ a: number; b: number; c: number | null; cat: string }>(t.pool, 'SELECT a, b, c, cat FROM public.many');
    const d = artifact.dims;
    const X = new Float64Array(data.length * d);
    data.forEach((r, i) => {
      for (const f of artifact.features) {
        if (f.kind === 'numeric') {
          const x = (r as any)[f.name] ?? f.mean;
          X[i * d + f.offset] = (x - f.mean) / f.scale;
        } else X[i * d + f.offset + f.categories.indexOf((r as any)[f.name])] = 1;
      }
    });
    const init = Float64Array.from((metrics.initial_centroids as number[][]).flat());
    const ref = await lloyd(makeSpace(X, data.length, d, 'euclidean'), init, 4, { maxIterations: 300, earlyStop: true, minRelProgress: 0.00001 });
    const got = artifact.centroids.flat();
    got.forEach((v, i) => expect(Math.abs(v - ref.centroids[i]!)).toBeLessThan(1e-9));
    const sizes = new Array(4).fill(0);
    for (const l of ref.labels) sizes[l]++;
    expect(metrics.cluster_sizes).toEqual(sizes);
    expect(metrics.mean_squared_distance).toBeCloseTo(ref.loss, 9);
    const info = await rows<{ iteration: number; duration_ms: number }>(t.pool, `SELECT iteration, duration_ms FROM ml_training_info('many')`);
    expect(info.length).toBe(ref.iterations.length); // one aggregate per Lloyd step, with its time
    expect(info.every((i) => i.duration_ms > 0)).toBe(true);
    expect((await errorOf(t.pool, `SELECT ml_create_model('x', 'kmeans', 'SELECT a FROM public.many', '{"training_mode": "in_database"}')`)).message).toMatch(/give one num_clusters/);
    // a column of a user's type (its owner's casts could come along) is refused, with the fix
    // the step's text and work are bounded: too many clusters is refused before any step runs
    expect((await errorOf(t.pool, `CALL ml_train('many_k', 'kmeans', 'SELECT a, b FROM public.many', '{"training_mode": "in_database", "num_clusters": 300}')`)).message)
      .toMatch(/takes at most 256 clusters \(got 300\)/);
    await t.pool.query(`CREATE TYPE public.tier AS ENUM ('x', 'y', 'z'); CREATE TABLE public.typed AS SELECT a, cat::public.tier AS tier FROM public.many LIMIT 5000`);
    expect((await errorOf(t.pool, `CALL ml_train('typed', 'kmeans', 'SELECT a, tier FROM public.typed', '{"training_mode": "in_database", "num_clusters": 2}')`)).message)
      .toMatch(/column "tier" has a type "training_mode": "in_database" does not read/);
    expect((await errorOf(t.pool, `SELECT ml_create_model('x', 'kmeans', 'SELECT a FROM public.many', '{"training_mode": "in_database", "num_clusters": 3, "batch_size": 5000}')`)).message).toMatch(/"batch_size" cannot be combined with "training_mode": "in_database"/);
  });
});
