import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adjustedRandIndex } from '../src/metrics/ari.ts';
import { errorOf, freshDatabase, rows, type TestDb } from './helpers.ts';

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('density', { demo: true });
  await t.worker();
  // Four well-separated blobs (sd 0.5, 8 apart) of different sizes plus sparse uniform noise
  // over a larger square; seeded, so the data is the same on every run.
  const c = await t.pool.connect();
  try {
    await c.query('SELECT setseed(0.25)');
    await c.query(`
      CREATE TABLE public.blobs_noise AS
      WITH blob AS (SELECT * FROM (VALUES (1, 0.0, 0.0, 200), (2, 8.0, 0.0, 150), (3, 0.0, 8.0, 120), (4, 8.0, 8.0, 90)) AS b(id, cx, cy, n))
      SELECT row_number() OVER () AS row_id, x, y, truth FROM (
        SELECT b.cx + 0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS x,
               b.cy + 0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS y, b.id AS truth
          FROM blob b, generate_series(1, b.n)
        UNION ALL
        SELECT -8 + 24 * random(), -8 + 24 * random(), -1 FROM generate_series(1, 40)) s`);
  } finally {
    c.release();
  }
});
afterAll(async () => t?.close());

describe('hdbscan', () => {
  it('finds every blob, numbers clusters 1..n by size, and marks the uniform noise -1', async () => {
    await t.pool.query(
      `CALL ml_train('dens', 'hdbscan', 'SELECT row_id, x, y FROM public.blobs_noise', '{"ignore": "row_id", "min_cluster_size": 40, "standardize_features": false, "output_table": "dens_labels"}')`,
    );
    const [e] = await rows<{ num_clusters: number; noise_fraction: number; dbcv: number; silhouette_score: number }>(t.pool, `SELECT * FROM ml_evaluate('dens')`);
    expect(e!.num_clusters).toBe(4);
    expect(e!.dbcv).toBeGreaterThan(0.3);
    const labels = await rows<{ truth: number; centroid_id: number }>(
      t.pool,
      `SELECT b.truth, l.centroid_id FROM public.blobs_noise b JOIN dens_labels l USING (row_id) ORDER BY row_id`,
    );
    expect(labels).toHaveLength(600);
    // Cluster 1 is the largest blob, 4 the smallest.
    for (const [cluster, blob] of [[1, 1], [2, 2], [3, 3], [4, 4]] as const) {
      const inBlob = labels.filter((l) => l.truth === blob);
      const hits = inBlob.filter((l) => l.centroid_id === cluster).length;
      expect(hits / inBlob.length).toBeGreaterThan(0.85);
    }
    // Uniform rows farther than half the blob spacing (8 standard deviations) from every blob
    // are noise. (Noise rows closer to a blob join it when they attach before the blob splits
    // from the others: that is HDBSCAN's definition, and R's dbscan::hdbscan agrees.)
    const far = await rows<{ centroid_id: number }>(
      t.pool,
      `SELECT l.centroid_id FROM public.blobs_noise b JOIN dens_labels l USING (row_id)
        WHERE b.truth = -1 AND least(sqrt(b.x ^ 2 + b.y ^ 2), sqrt((b.x - 8) ^ 2 + b.y ^ 2), sqrt(b.x ^ 2 + (b.y - 8) ^ 2), sqrt((b.x - 8) ^ 2 + (b.y - 8) ^ 2)) > 4`,
    );
    expect(far.length).toBeGreaterThan(15);
    expect(far.filter((l) => l.centroid_id === -1).length / far.length).toBeGreaterThan(0.85);
    expect(e!.noise_fraction).toBeCloseTo(labels.filter((l) => l.centroid_id === -1).length / 600, 12);
  });

  it('output_table holds the ids, labels, probabilities and outlier scores the model was fitted with, owned by the sidecar, readable by the requester', async () => {
    const [c] = await rows<{ n: string; owner: string; readable: boolean; probs: number; bad: string }>(
      t.pool,
      `SELECT count(*) AS n, (SELECT tableowner FROM pg_tables WHERE tablename = 'dens_labels') AS owner,
              has_table_privilege(current_user, 'dens_labels', 'SELECT') AS readable,
              avg(membership_probability) FILTER (WHERE centroid_id > 0) AS probs,
              count(*) FILTER (WHERE (centroid_id = -1) <> (membership_probability = 0) OR outlier_score NOT BETWEEN 0 AND 1) AS bad
         FROM dens_labels`,
    );
    expect(Number(c!.n)).toBe(600);
    expect(c!.owner).toBe('ml_sidecar');
    expect(c!.readable).toBe(true);
    expect(c!.probs).toBeGreaterThan(0.5);
    expect(Number(c!.bad)).toBe(0);
  });

  it('is invariant to row order', async () => {
    await t.pool.query(
      `CALL ml_train('dens_shuffled', 'hdbscan', 'SELECT row_id, x, y FROM public.blobs_noise ORDER BY md5(row_id::text)', '{"ignore": "row_id", "min_cluster_size": 40, "standardize_features": false, "output_table": "dens_labels2"}')`,
    );
    const a = await rows<{ c: number }>(t.pool, `SELECT centroid_id AS c FROM dens_labels ORDER BY row_id`);
    const b = await rows<{ c: number }>(t.pool, `SELECT centroid_id AS c FROM dens_labels2 ORDER BY row_id`);
    expect(adjustedRandIndex(Int32Array.from(a, (r) => r.c + 1), Int32Array.from(b, (r) => r.c + 1))).toBeGreaterThan(0.99);
  });

  it('ml_predict and the generated function assign new rows by the same rule; far rows are noise', async () => {
    const r = await rows<{ centroid_id: number; fn: number; membership_probability: number; outlier_score: number }>(
      t.pool,
      `SELECT p.centroid_id, dens_predict((p.input->>'x')::float8, (p.input->>'y')::float8) AS fn, p.membership_probability, p.outlier_score
         FROM ml_predict('dens', 'SELECT 0.1 AS x, -0.2 AS y UNION ALL SELECT 7.8, 8.3 UNION ALL SELECT 500, 500') p`,
    );
    expect(r.map((x) => x.centroid_id)).toEqual([1, 4, -1]);
    expect(r.map((x) => x.fn)).toEqual([1, 4, -1]);
    expect(r[2]!.membership_probability).toBe(0);
    expect(r[2]!.outlier_score).toBeGreaterThan(0.9);
    const [agree] = await rows<{ n: string; same: string }>(
      t.pool,
      `SELECT count(*) AS n, count(*) FILTER (WHERE p.centroid_id = dens_predict((p.input->>'x')::float8, (p.input->>'y')::float8)) AS same
         FROM ml_predict('dens', 'SELECT x, y FROM public.blobs_noise') p`,
    );
    expect(Number(agree!.same)).toBe(Number(agree!.n));
  });

  it('ml_centroids gives each cluster\u2019s member means', async () => {
    const cents = await rows<{ centroid_id: number; feature: string; numerical_value: number }>(t.pool, `SELECT * FROM ml_centroids('dens')`);
    const means = await rows<{ c: number; x: number; y: number }>(
      t.pool,
      `SELECT l.centroid_id AS c, avg(b.x) AS x, avg(b.y) AS y FROM public.blobs_noise b JOIN dens_labels l USING (row_id) WHERE l.centroid_id > 0 GROUP BY 1`,
    );
    for (const m of means) {
      expect(cents.find((c) => c.centroid_id === m.c && c.feature === 'x')!.numerical_value).toBeCloseTo(m.x, 9);
      expect(cents.find((c) => c.centroid_id === m.c && c.feature === 'y')!.numerical_value).toBeCloseTo(m.y, 9);
    }
  });

  it('options are validated, and a model with no cluster fails with a message', async () => {
    expect((await errorOf(t.pool, `SELECT ml_create_model('d', 'hdbscan', 'SELECT 1 AS x', '{"cluster_selection_method": "max"}')`)).message).toMatch(
      /option "cluster_selection_method" must be one of eom, leaf/,
    );
    expect((await errorOf(t.pool, `SELECT ml_create_model('d', 'hdbscan', 'SELECT 1 AS x', '{"num_clusters": 3}')`)).message).toMatch(/unknown option "num_clusters" for model_type hdbscan/);
    const [{ job }] = (await rows<{ job: string }>(t.pool, `SELECT ml_create_model('d', 'hdbscan', 'SELECT random() AS x FROM generate_series(1, 30)', '{"min_cluster_size": 30}') AS job`)) as [{ job: string }];
    expect((await errorOf(t.pool, 'SELECT ml_wait($1)', [job])).message).toMatch(/HDBSCAN found no cluster: every row is noise at min_cluster_size 30/);
  });
});

describe('segment profiles', () => {
  const SEGMENTED = `SELECT c.*, s.centroid_id FROM demo.customer_features c JOIN seg_labels s USING (customer_id)`;
  beforeAll(async () => {
    await t.pool.query(
      `CALL ml_train('seg', 'kmeans', 'SELECT * FROM demo.customer_features', '{"num_clusters": 4, "exclude": "customer_id", "seed": 1, "output_table": "seg_labels"}')`,
    );
  });

  it('output_table of a k-means model: one row per training row, with the labels ml_predict gives', async () => {
    const [r] = await rows<{ n: string; same: string }>(
      t.pool,
      `SELECT count(*) AS n, count(*) FILTER (WHERE s.centroid_id = p.centroid_id) AS same
         FROM seg_labels s JOIN ml_predict('seg', 'SELECT * FROM demo.customer_features') p ON p.input->>'customer_id' = s.customer_id`,
    );
    expect(Number(r!.n)).toBe(793);
    expect(Number(r!.same)).toBe(793);
  });

  it('ml_profile equals the same numbers computed with plain SQL', async () => {
    const prof = await rows<{ segment: string; segment_size: string; feature: string; category: string | null; segment_value: number; baseline_value: number; index: number; std_diff: number }>(
      t.pool,
      `SELECT * FROM ml_profile($1, 'centroid_id', '{"exclude": "customer_id"}')`,
      [SEGMENTED],
    );
    const plain = await rows<{ segment: string; n: string; monetary: number; east: number; pop_monetary: number; sd_monetary: number; pop_east: number }>(
      t.pool,
      `SELECT s.centroid_id::text AS segment, count(*) AS n, avg(c.monetary)::float8 AS monetary, avg((c.region = 'East')::int)::float8 AS east,
              (SELECT avg(monetary)::float8 FROM demo.customer_features) AS pop_monetary,
              (SELECT stddev_pop(monetary)::float8 FROM demo.customer_features) AS sd_monetary,
              (SELECT avg((region = 'East')::int)::float8 FROM demo.customer_features) AS pop_east
         FROM demo.customer_features c JOIN seg_labels s USING (customer_id) GROUP BY 1`,
    );
    for (const p of plain) {
      const m = prof.find((r) => r.segment === p.segment && r.feature === 'monetary')!;
      expect(Number(m.segment_size)).toBe(Number(p.n));
      expect(m.segment_value).toBeCloseTo(p.monetary, 9);
      expect(m.baseline_value).toBeCloseTo(p.pop_monetary, 9);
      expect(m.index).toBeCloseTo(p.monetary / p.pop_monetary - 1, 9);
      expect(m.std_diff).toBeCloseTo((p.monetary - p.pop_monetary) / p.sd_monetary, 9);
      const e = prof.find((r) => r.segment === p.segment && r.feature === 'region' && r.category === 'East')!;
      expect(e.segment_value).toBeCloseTo(p.east, 9);
      expect(e.baseline_value).toBeCloseTo(p.pop_east, 9);
      expect(e.std_diff).toBeCloseTo((p.east - p.pop_east) / Math.sqrt(p.pop_east * (1 - p.pop_east)), 9);
    }
    expect(prof.some((r) => r.feature === 'customer_id')).toBe(false);
  });

  it('baseline segment_means uses the mean of the segment means; overlay columns are profiled too; ml_profile_model and the summary agree', async () => {
    const means = await rows<{ feature: string; baseline_value: number }>(
      t.pool,
      `SELECT DISTINCT feature, baseline_value FROM ml_profile($1, 'centroid_id', '{"exclude": "customer_id", "baseline": "segment_means"}') WHERE feature = 'frequency'`,
      [SEGMENTED],
    );
    const [plain] = await rows<{ b: number }>(
      t.pool,
      `SELECT avg(m)::float8 AS b FROM (SELECT avg(c.frequency) AS m FROM demo.customer_features c JOIN seg_labels s USING (customer_id) GROUP BY s.centroid_id) x`,
    );
    expect(means[0]!.baseline_value).toBeCloseTo(plain!.b, 9);
    // Overlay: a column the model never saw (profit), joined in the query.
    const overlay = await rows<{ segment: string; feature: string }>(
      t.pool,
      `SELECT * FROM ml_profile_model('seg', 'SELECT c.*, p.profit FROM demo.customer_features c JOIN (SELECT customer_id, sum(profit) AS profit FROM demo.orders GROUP BY 1) p USING (customer_id)') WHERE feature = 'profit'`,
    );
    expect(new Set(overlay.map((o) => o.segment)).size).toBe(4);
    const summary = await rows<{ segment: string; segment_size: string; description: string; top_over: unknown[] }>(
      t.pool,
      `SELECT * FROM ml_segment_summary($1, 'centroid_id', '{"exclude": "customer_id", "noun": "customers"}')`,
      [SEGMENTED],
    );
    expect(summary).toHaveLength(4);
    for (const s of summary) {
      expect(s.description).toMatch(new RegExp(`^${s.segment_size} customers \\(\\d+%\\): \\S`));
      expect(s.top_over.length).toBeGreaterThan(0);
    }
  });
});
