import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, rows, type TestDb } from './helpers.ts';

// The BigQuery ML k-means tutorial (seed 002), ported to sqlml on the demo data, step by step
// as docs/tutorial-kmeans.md walks through it.

const FEATURES = `SELECT * FROM demo.customer_features`;
const ARGS = 'recency_days, frequency, monetary, avg_basket, discount_share, segment, region';

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('tutorial', { demo: true });
  await t.worker({ concurrency: 2 });
});
afterAll(async () => t?.close());

describe('the BigQuery ML segmentation tutorial from SQL', () => {
  it('the demo data has the 9,994 Superstore order lines and 793 customers', async () => {
    const [r] = await rows<{ lines: string; customers: string }>(
      t.pool,
      `SELECT (SELECT count(*) FROM demo.orders) AS lines, (SELECT count(*) FROM demo.customer_features) AS customers`,
    );
    expect(Number(r!.lines)).toBe(9994);
    expect(Number(r!.customers)).toBe(793);
  });

  it('creates one model per k = 3..15 in one statement, waits, and compares ml_evaluate across k', async () => {
    const jobs = await rows<{ job: string }>(
      t.pool,
      `SELECT ml_create_model('segments_k' || k, 'kmeans', $1, jsonb_build_object('num_clusters', k, 'exclude', 'customer_id', 'seed', 7)) AS job
         FROM generate_series(3, 15) AS k`,
      [FEATURES],
    );
    expect(jobs).toHaveLength(13);
    for (const j of jobs) {
      const [w] = await rows<{ status: string }>(t.pool, `SELECT status FROM ml_wait($1)`, [j.job]);
      expect(w!.status).toBe('ready');
    }
    const evals = await rows<{ k: number; davies_bouldin_index: number; mean_squared_distance: number }>(
      t.pool,
      `SELECT k, e.* FROM generate_series(3, 15) AS k, ml_evaluate('segments_k' || k) AS e ORDER BY k`,
    );
    expect(evals).toHaveLength(13);
    for (const e of evals) {
      expect(e.davies_bouldin_index).toBeGreaterThan(0);
      expect(e.mean_squared_distance).toBeGreaterThan(0);
    }
    // The elbow curve falls: more clusters, smaller mean squared distance (allowing for the
    // occasional local optimum, over a step of 3).
    for (let i = 3; i < evals.length; i++) {
      expect(evals[i]!.mean_squared_distance).toBeLessThan(evals[i - 3]!.mean_squared_distance);
    }
    const [m] = await rows<{ n: string }>(t.pool, `SELECT count(*) AS n FROM ml_models WHERE model_name LIKE 'segments_k%' AND state = 'ready'`);
    expect(Number(m!.n)).toBe(13);
  });

  it('ml_centroids gives numeric centroids in original units and category shares equal to the members\u2019 shares', async () => {
    const cents = await rows<{ centroid_id: number; feature: string; numerical_value: number | null; categorical_value: { category: string; value: number }[] | null }>(
      t.pool,
      `SELECT * FROM ml_centroids('segments_k4')`,
    );
    expect(cents).toHaveLength(4 * 7);
    // Independent: the members of each cluster (as ml_predict assigns them), averaged in SQL.
    const members = await rows<{ centroid_id: number; monetary: number; east: number }>(
      t.pool,
      `SELECT centroid_id, avg((input->>'monetary')::float8) AS monetary,
              avg(((input->>'region') = 'East')::int)::float8 AS east
         FROM ml_predict('segments_k4', $1) GROUP BY centroid_id`,
      [FEATURES],
    );
    for (const m of members) {
      const monetary = cents.find((c) => c.centroid_id === m.centroid_id && c.feature === 'monetary')!;
      expect(monetary.numerical_value).toBeCloseTo(m.monetary, 6);
      const region = cents.find((c) => c.centroid_id === m.centroid_id && c.feature === 'region')!;
      const shares = region.categorical_value!;
      expect(shares.reduce((s, x) => s + x.value, 0)).toBeCloseTo(1, 9);
      expect(shares.find((x) => x.category === 'East')!.value).toBeCloseTo(m.east, 9);
    }
  });

  it('ml_predict scores every customer, in order, keeping the input row', async () => {
    const pred = await rows<{ input: { customer_id: string }; centroid_id: number; nearest_centroids_distance: { centroid_id: number; distance: number }[] }>(
      t.pool,
      `SELECT * FROM ml_predict('segments_k6', 'SELECT * FROM demo.customer_features ORDER BY customer_id')`,
    );
    expect(pred).toHaveLength(793);
    const ids = pred.map((p) => p.input.customer_id);
    expect(ids).toEqual([...ids].sort());
    for (const p of pred) {
      const near = p.nearest_centroids_distance;
      expect(near).toHaveLength(5); // min(k = 6, 5)
      expect(near[0]!.centroid_id).toBe(p.centroid_id);
      for (let i = 1; i < near.length; i++) expect(near[i]!.distance).toBeGreaterThanOrEqual(near[i - 1]!.distance);
    }
  });

  it('nearest_centroids_distance lists the 5 nearest centroids of the model\'s distances, ascending, ties by id', async () => {
    // Independent of ml_predict's ranking function: every distance from the version's
    // distances function, sorted in SQL.
    const [fn] = await rows<{ f: string }>(
      t.pool,
      `SELECT t.scores_function AS f FROM ml.trials t JOIN ml.models m ON m.id = t.model_id WHERE m.model_name = 'segments_k8' AND t.is_optimal`,
    );
    const [r] = await rows<{ total: string; bad: string }>(
      t.pool,
      `WITH p AS (SELECT * FROM ml_predict('segments_k8', $1)),
            c AS (SELECT c.customer_id, ${fn!.f}(${ARGS.split(', ').map((a) => 'c.' + a).join(', ')}) AS d FROM demo.customer_features c)
       SELECT count(*) AS total,
              count(*) FILTER (WHERE EXISTS (
                SELECT 1 FROM (SELECT v, i, row_number() OVER (ORDER BY v, i) AS rank FROM unnest(c.d) WITH ORDINALITY x(v, i)) e
                 JOIN LATERAL jsonb_array_elements(p.nearest_centroids_distance) WITH ORDINALITY l(item, rank) ON l.rank = e.rank
                 WHERE (l.item->>'centroid_id')::int <> e.i OR abs((l.item->>'distance')::float8 - e.v) > 1e-9 * greatest(1, e.v))
                 OR jsonb_array_length(p.nearest_centroids_distance) <> 5) AS bad
         FROM p JOIN c ON c.customer_id = p.input->>'customer_id'`,
      [FEATURES],
    );
    expect(Number(r!.total)).toBe(793);
    expect(Number(r!.bad)).toBe(0);
  });

  it('the generated function agrees with ml_predict on every row, for every k', async () => {
    for (const k of [3, 8, 15]) {
      const [r] = await rows<{ total: string; disagree: string }>(
        t.pool,
        `SELECT count(*) AS total, count(*) FILTER (WHERE p.centroid_id <> segments_k${k}_predict(${ARGS.split(', ').map((a) => 'c.' + a).join(', ')})) AS disagree
           FROM ml_predict('segments_k${k}', $1) p JOIN demo.customer_features c ON c.customer_id = p.input->>'customer_id'`,
        [FEATURES],
      );
      expect(Number(r!.total)).toBe(793);
      expect(Number(r!.disagree)).toBe(0);
    }
  });

  it('the generated function is usable in any SELECT: IMMUTABLE, PARALLEL SAFE, typed arguments in training order', async () => {
    const [f] = await rows<{ args: string; volatile: string; parallel: string }>(
      t.pool,
      `SELECT pg_get_function_arguments(p.oid) AS args, p.provolatile AS volatile, p.proparallel AS parallel
         FROM pg_proc p WHERE p.proname = 'segments_k5_predict'`,
    );
    expect(f!.args).toBe(
      'recency_days double precision, frequency double precision, monetary double precision, avg_basket double precision, discount_share double precision, segment text, region text',
    );
    expect(f!.volatile).toBe('i');
    expect(f!.parallel).toBe('s');
    const bySegment = await rows<{ segment: number; n: string }>(
      t.pool,
      `SELECT segments_k5_predict(${ARGS}) AS segment, count(*) AS n FROM demo.customer_features GROUP BY 1 ORDER BY 1`,
    );
    expect(bySegment.reduce((s, r) => s + Number(r.n), 0)).toBe(793);
  });

  it('ml_evaluate on a query recomputes the training metrics in SQL', async () => {
    const [trained] = await rows<{ davies_bouldin_index: number; mean_squared_distance: number }>(t.pool, `SELECT * FROM ml_evaluate('segments_k6')`);
    const [scored] = await rows<{ davies_bouldin_index: number; mean_squared_distance: number }>(
      t.pool,
      `SELECT * FROM ml_evaluate('segments_k6', $1)`,
      [FEATURES],
    );
    expect(scored!.mean_squared_distance).toBeCloseTo(trained!.mean_squared_distance, 9);
    expect(scored!.davies_bouldin_index).toBeCloseTo(trained!.davies_bouldin_index, 6);
  });

  it('unseen categories and NULLs score without error, as at training time', async () => {
    const r = await rows<{ centroid_id: number; f: number }>(
      t.pool,
      `SELECT p.centroid_id, segments_k4_predict(NULL, 3, NULL, 100, 0.5, 'Government', NULL) AS f
         FROM ml_predict('segments_k4', $$SELECT NULL::int AS recency_days, 3 AS frequency, NULL::numeric AS monetary,
                                              100 AS avg_basket, 0.5 AS discount_share, 'Government' AS segment, NULL AS region$$) p`,
    );
    expect(r).toHaveLength(1);
    expect(r[0]!.centroid_id).toBe(r[0]!.f);
  });

  it('training info and feature info describe the run', async () => {
    const info = await rows<{ iteration: number; loss: number; cluster_info: { cluster_size: number }[] }>(
      t.pool,
      `SELECT * FROM ml_training_info('segments_k4')`,
    );
    expect(info.length).toBeGreaterThan(1);
    for (let i = 1; i < info.length; i++) expect(info[i]!.loss).toBeLessThanOrEqual(info[i - 1]!.loss + 1e-12);
    expect(info.at(-1)!.cluster_info.reduce((s, c) => s + c.cluster_size, 0)).toBe(793);
    const [eval_] = await rows<{ mean_squared_distance: number }>(t.pool, `SELECT * FROM ml_evaluate('segments_k4')`);
    expect(info.at(-1)!.loss).toBeCloseTo(eval_!.mean_squared_distance, 12);

    const feats = await rows<{ input: string; type: string; mean: number | null; category_count: number | null }>(
      t.pool,
      `SELECT * FROM ml_feature_info('segments_k4')`,
    );
    expect(feats.map((f) => f.input)).toEqual(ARGS.split(', '));
    const [avg] = await rows<{ m: number }>(t.pool, `SELECT avg(monetary)::float8 AS m FROM demo.customer_features`);
    expect(feats.find((f) => f.input === 'monetary')!.mean).toBeCloseTo(avg!.m, 6);
    expect(feats.find((f) => f.input === 'region')!.category_count).toBe(4);
  });

  it('CALL ml_train trains and waits in one statement; a new call makes version 2; ml_drop_model removes all', async () => {
    const c = await t.pool.connect();
    try {
      await c.query(`CALL ml_train('churny', 'kmeans', $$SELECT frequency, monetary FROM demo.customer_features$$, '{"num_clusters": 3, "seed": 1}')`);
      await c.query(`CALL ml_train('churny', 'kmeans', $$SELECT frequency, monetary FROM demo.customer_features$$, '{"num_clusters": 2, "seed": 1}')`);
    } finally {
      c.release();
    }
    const versions = await rows<{ version: number; state: string }>(t.pool, `SELECT version, state FROM ml_models WHERE model_name = 'churny' ORDER BY version`);
    expect(versions).toEqual([{ version: 1, state: 'ready' }, { version: 2, state: 'ready' }]);
    // Latest version by default, an older one by name@version.
    const [latest] = await rows<{ n: string }>(t.pool, `SELECT count(DISTINCT centroid_id) AS n FROM ml_centroids('churny')`);
    const [v1] = await rows<{ n: string }>(t.pool, `SELECT count(DISTINCT centroid_id) AS n FROM ml_centroids('churny@1')`);
    expect(Number(latest!.n)).toBe(2);
    expect(Number(v1!.n)).toBe(3);
    const [maxId] = await rows<{ m: number }>(t.pool, `SELECT max(churny_predict(frequency, monetary)) AS m FROM demo.customer_features`);
    expect(maxId!.m).toBe(2);
    const [dropped] = await rows<{ n: number }>(t.pool, `SELECT ml_drop_model('churny') AS n`);
    expect(dropped!.n).toBe(2);
    const [fn] = await rows<{ n: string }>(t.pool, `SELECT count(*) AS n FROM pg_proc WHERE proname = 'churny_predict' OR proname LIKE 'm%_distances' AND pronamespace = 'ml'::regnamespace`);
    const [left] = await rows<{ n: string }>(t.pool, `SELECT count(*) AS n FROM ml.models`);
    expect(Number(fn!.n)).toBe(Number(left!.n)); // one distances function per remaining version, no churny_predict
  });

  it('retraining with a renamed column (same argument types) replaces the generated function instead of failing', async () => {
    await t.pool.query(`CALL ml_train('renamed', 'kmeans', $$SELECT frequency, monetary FROM demo.customer_features$$, '{"num_clusters": 3, "seed": 1}')`);
    await t.pool.query(`CALL ml_train('renamed', 'kmeans', $$SELECT frequency AS orders, monetary AS spend FROM demo.customer_features$$, '{"num_clusters": 3, "seed": 1}')`);
    const [sig] = await rows<{ args: string; n: string }>(t.pool,
      `SELECT pg_get_function_identity_arguments('renamed_predict'::regproc) AS args,
              (SELECT count(*) FROM ml.generated_functions g JOIN ml.models m ON m.id = g.model_id WHERE m.model_name = 'renamed' AND g.kind = 'public') AS n`);
    expect(sig).toEqual({ args: 'orders double precision, spend double precision', n: '1' });
    const [same] = await rows<{ differ: string }>(t.pool,
      `SELECT count(*) FILTER (WHERE p.centroid_id <> renamed_predict(orders => c.frequency, spend => c.monetary)) AS differ
         FROM ml_predict('renamed', 'SELECT frequency AS orders, monetary AS spend, customer_id FROM demo.customer_features ORDER BY customer_id') p
         JOIN demo.customer_features c ON c.customer_id = p.input->>'customer_id'`);
    expect(same!.differ).toBe('0');
  });
});
