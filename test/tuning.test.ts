import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adjustedRandIndex } from '../src/metrics/ari.ts';
import { errorOf, freshDatabase, rows, type TestDb } from './helpers.ts';

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('tuning', { demo: true });
  await t.worker();
  // Three well-separated blobs with a known answer, plus a little spread.
  await t.pool.query(`
    CREATE TABLE public.blobs AS
    SELECT i AS id, (i % 3) * 10 + (random() - 0.5) AS x, (i % 3) * -7 + (random() - 0.5) AS y, (i % 3) AS truth
      FROM generate_series(1, 600) i`);
});
afterAll(async () => t?.close());

const CUSTOMERS = 'SELECT * FROM demo.customer_features';

interface Trial {
  trial_id: number;
  hyperparameters: { num_clusters: number };
  davies_bouldin_index: number;
  mean_squared_distance: number;
  silhouette_score: number;
  calinski_harabasz_score: number;
  status: string;
  is_optimal: boolean;
  is_elbow: boolean | null;
}

describe('choosing k in one call', () => {
  it('a range sweep trains one trial per k and serves the one with the lowest Davies-Bouldin index', async () => {
    await t.pool.query(`CALL ml_train('sweep', 'kmeans', $1, '{"num_clusters": {"range": [2, 8]}, "exclude": "customer_id", "seed": 3}')`, [CUSTOMERS]);
    const trials = await rows<Trial>(t.pool, `SELECT * FROM ml_trial_info('sweep')`);
    expect(trials.map((r) => r.hyperparameters.num_clusters)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(trials.every((r) => r.status === 'succeeded')).toBe(true);
    const best = trials.reduce((a, b) => (b.davies_bouldin_index < a.davies_bouldin_index ? b : a));
    expect(trials.filter((r) => r.is_optimal).map((r) => r.trial_id)).toEqual([best.trial_id]);
    expect(trials.filter((r) => r.is_elbow)).toHaveLength(1);
    // The model serves the optimal trial: ml_evaluate, ml_centroids, ml_predict and the function.
    const [e] = await rows<{ trial_id: number; davies_bouldin_index: number }>(t.pool, `SELECT * FROM ml_evaluate('sweep')`);
    expect(e!.trial_id).toBe(best.trial_id);
    expect(e!.davies_bouldin_index).toBe(best.davies_bouldin_index);
    const [c] = await rows<{ k: string }>(t.pool, `SELECT count(DISTINCT centroid_id) AS k FROM ml_centroids('sweep')`);
    expect(Number(c!.k)).toBe(best.hyperparameters.num_clusters);
    const [m] = await rows<{ k: number }>(t.pool, `SELECT max(centroid_id) AS k FROM ml_predict('sweep', $1)`, [CUSTOMERS]);
    expect(m!.k).toBeLessThanOrEqual(best.hyperparameters.num_clusters);
  });

  it('the elbow is the trial farthest below the chord of the normalized mean-squared-distance curve', async () => {
    const trials = await rows<Trial>(t.pool, `SELECT * FROM ml_trial_info('sweep')`);
    const ks = trials.map((r) => r.hyperparameters.num_clusters);
    const ys = trials.map((r) => r.mean_squared_distance);
    const [lo, hi] = [Math.min(...ys), Math.max(...ys)];
    const gaps = trials.map((_, i) => 1 - (ks[i]! - ks[0]!) / (ks.at(-1)! - ks[0]!) - (ys[i]! - lo) / (hi - lo));
    const knee = gaps.indexOf(Math.max(...gaps));
    expect(trials[knee]!.is_elbow).toBe(true);
  });

  it('another trial can be inspected and used: ml_evaluate, ml_centroids and ml_predict take a trial', async () => {
    const [tr] = await rows<Trial>(t.pool, `SELECT * FROM ml_trial_info('sweep') WHERE NOT is_optimal ORDER BY trial_id DESC LIMIT 1`);
    const k = tr!.hyperparameters.num_clusters;
    const [e] = await rows<{ trial_id: number; mean_squared_distance: number }>(t.pool, `SELECT * FROM ml_evaluate('sweep', NULL, $1)`, [
      JSON.stringify({ trial_id: tr!.trial_id }),
    ]);
    expect(e).toMatchObject({ trial_id: tr!.trial_id, mean_squared_distance: tr!.mean_squared_distance });
    const [c] = await rows<{ k: string }>(t.pool, `SELECT count(DISTINCT centroid_id) AS k FROM ml_centroids('sweep', false, $1)`, [tr!.trial_id]);
    expect(Number(c!.k)).toBe(k);
    const [p] = await rows<{ k: number; n: string }>(t.pool, `SELECT max(centroid_id) AS k, count(*) AS n FROM ml_predict('sweep', $1, $2)`, [
      CUSTOMERS,
      JSON.stringify({ trial_id: tr!.trial_id }),
    ]);
    expect(p!.k).toBe(k);
    expect(Number(p!.n)).toBe(793);
    const [scored] = await rows<{ mean_squared_distance: number }>(t.pool, `SELECT * FROM ml_evaluate('sweep', $1, $2)`, [
      CUSTOMERS,
      JSON.stringify({ trial_id: tr!.trial_id }),
    ]);
    expect(scored!.mean_squared_distance).toBeCloseTo(tr!.mean_squared_distance, 9);
    expect((await errorOf(t.pool, `SELECT * FROM ml_evaluate('sweep', NULL, '{"trial_id": 99}')`)).message).toMatch(/has no successful trial 99/);
  });

  it('"auto" sweeps k = 2..10; other objectives pick by silhouette, Calinski-Harabasz or the elbow', async () => {
    await t.pool.query(
      `CALL ml_train('auto_sil', 'kmeans', $1, '{"num_clusters": "auto", "hparam_tuning_objective": "silhouette_score", "exclude": "customer_id", "seed": 3}')`,
      [CUSTOMERS],
    );
    const trials = await rows<Trial>(t.pool, `SELECT * FROM ml_trial_info('auto_sil')`);
    expect(trials.map((r) => r.hyperparameters.num_clusters)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const best = trials.reduce((a, b) => (b.silhouette_score > a.silhouette_score ? b : a));
    expect(trials.find((r) => r.is_optimal)!.trial_id).toBe(best.trial_id);

    await t.pool.query(`CALL ml_train('cand_elbow', 'kmeans', $1, '{"num_clusters": {"candidates": [6, 2, 4]}, "hparam_tuning_objective": "elbow", "exclude": "customer_id", "seed": 3}')`, [CUSTOMERS]);
    const c = await rows<Trial>(t.pool, `SELECT * FROM ml_trial_info('cand_elbow')`);
    expect(c.map((r) => r.hyperparameters.num_clusters)).toEqual([2, 4, 6]);
    expect(c.find((r) => r.is_optimal)!.trial_id).toBe(c.find((r) => r.is_elbow)!.trial_id);
  });
});

describe('stable segment ids', () => {
  it('retraining with other seeds keeps each segment\u2019s id', async () => {
    const labelsOf = async () =>
      Int32Array.from(
        (await rows<{ c: number }>(t.pool, `SELECT centroid_id AS c FROM ml_predict('stable', 'SELECT * FROM public.blobs ORDER BY id')`)).map((r) => r.c),
      );
    const versions: Int32Array[] = [];
    for (const seed of [1, 2, 3]) {
      await t.pool.query(`CALL ml_train('stable', 'kmeans', 'SELECT x, y FROM public.blobs', $1)`, [JSON.stringify({ num_clusters: 3, seed, n_init: 1 })]);
      versions.push(await labelsOf());
    }
    expect(Array.from(versions[1]!)).toEqual(Array.from(versions[0]!));
    expect(Array.from(versions[2]!)).toEqual(Array.from(versions[0]!));
    const applied = await rows<{ version: number; applied: boolean }>(
      t.pool,
      `SELECT version, (metrics->>'stable_ids_applied')::boolean AS applied FROM ml_models WHERE model_name = 'stable' ORDER BY version`,
    );
    expect(applied.map((a) => a.applied)).toEqual([false, true, true]);
    // "stable_ids": false trains without renumbering.
    await t.pool.query(`CALL ml_train('stable', 'kmeans', 'SELECT x, y FROM public.blobs', '{"num_clusters": 3, "seed": 4, "stable_ids": false}')`);
    const [v4] = await rows<{ applied: boolean }>(t.pool, `SELECT (metrics->>'stable_ids_applied')::boolean AS applied FROM ml_models WHERE model_name = 'stable' AND version = 4`);
    expect(v4!.applied).toBe(false);
    expect(adjustedRandIndex(await labelsOf(), versions[0]!)).toBeCloseTo(1, 9); // same segments, whatever their ids
  });
});

describe('anomaly detection and stability', () => {
  it('the share of anomalies on the training data matches "contamination" within 0.5 percentage points', async () => {
    await t.pool.query(`CALL ml_train('anom', 'kmeans', $1, '{"num_clusters": 4, "exclude": "customer_id", "seed": 2}')`, [CUSTOMERS]);
    for (const c of [0.01, 0.05, 0.2, 0.5]) {
      const [r] = await rows<{ share: number }>(t.pool, `SELECT avg(is_anomaly::int)::float8 AS share FROM ml_detect_anomalies('anom', $1, $2)`, [
        CUSTOMERS,
        JSON.stringify({ contamination: c }),
      ]);
      expect(Math.abs(r!.share - c)).toBeLessThanOrEqual(0.005);
    }
    const [z] = await rows<{ n: string }>(t.pool, `SELECT count(*) FILTER (WHERE is_anomaly) AS n FROM ml_detect_anomalies('anom', $1, '{"contamination": 0}')`, [CUSTOMERS]);
    expect(Number(z!.n)).toBe(0);
    // normalized_distance = distance to the nearest centroid / that cluster's radius.
    const [chk] = await rows<{ bad: string }>(
      t.pool,
      `SELECT count(*) FILTER (WHERE abs(a.normalized_distance - (p.nearest_centroids_distance->0->>'distance')::float8 / r.radius) > 1e-9) AS bad
         FROM ml_detect_anomalies('anom', $1, '{"contamination": 0.1}') a
         JOIN ml_predict('anom', $1) p ON p.input = a.input
         CROSS JOIN LATERAL (SELECT sqrt(avg(((pp.nearest_centroids_distance->0->>'distance')::float8) ^ 2)) AS radius
                               FROM ml_predict('anom', $1) pp WHERE pp.centroid_id = a.centroid_id) r`,
      [CUSTOMERS],
    );
    expect(Number(chk!.bad)).toBe(0);
    expect((await errorOf(t.pool, `SELECT * FROM ml_detect_anomalies('anom', $1)`, [CUSTOMERS])).message).toMatch(/option "contamination" is required/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_detect_anomalies('anom', $1, '{"contamination": 0.7}')`, [CUSTOMERS])).message).toMatch(
      /option "contamination" must be a number between 0 and 0.5/,
    );
  });

  it('ml_evaluate reports stability: near 1 for well-separated segments, lower for arbitrary ones', async () => {
    const [blob] = await rows<{ stability: number }>(t.pool, `SELECT stability FROM ml_evaluate('stable@1')`);
    expect(blob!.stability).toBeGreaterThan(0.99);
    await t.pool.query(`CALL ml_train('noise', 'kmeans', 'SELECT random() AS a, random() AS b FROM generate_series(1, 2000)', '{"num_clusters": 7, "seed": 1}')`);
    const [noise] = await rows<{ stability: number }>(t.pool, `SELECT stability FROM ml_evaluate('noise')`);
    expect(noise!.stability).toBeGreaterThan(0);
    expect(noise!.stability).toBeLessThan(blob!.stability);
  });
});

describe('trials across sidecars', () => {
  it('a sweep\u2019s trials are jobs of their own: two sidecars share them, and the served model is the same as with one', async () => {
    await t.worker({ id: 'second-sidecar' });
    const query = 'SELECT random() AS a, random() AS b, random() AS c FROM generate_series(1, 20000)';
    await t.pool.query(`CREATE TABLE public.cube AS ${query}`);
    const [{ job }] = (await rows<{ job: string }>(
      t.pool,
      `SELECT ml_create_model('shared_sweep', 'kmeans', 'SELECT * FROM public.cube', '{"num_clusters": {"range": [2, 9]}, "seed": 5, "stability_runs": 0}') AS job`,
    )) as [{ job: string }];
    await t.pool.query('SELECT ml_wait($1)', [job]);
    const children = await rows<{ status: string; worker: string; k: number }>(
      t.pool,
      `SELECT status, history->0->>'worker' AS worker, (payload->>'k')::int AS k FROM ml.jobs WHERE parent_id = $1 ORDER BY id`,
      [job],
    );
    expect(children.map((c) => c.k)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    expect(children.every((c) => c.status === 'done')).toBe(true);
    expect(new Set(children.map((c) => c.worker)).size).toBe(2);
    const trials = await rows<{ status: string; is_optimal: boolean }>(t.pool, `SELECT status, is_optimal FROM ml_trial_info('shared_sweep')`);
    expect(trials).toHaveLength(8);
    expect(trials.filter((x) => x.is_optimal)).toHaveLength(1);
    // The same seed gives the same trials whoever trained them: compare with a single-k model.
    const [sweepTrial] = await rows<{ mean_squared_distance: number }>(
      t.pool,
      `SELECT mean_squared_distance FROM ml_trial_info('shared_sweep') WHERE (hyperparameters->>'num_clusters')::int = 4`,
    );
    await t.pool.query(`CALL ml_train('single_k4', 'kmeans', 'SELECT * FROM public.cube', '{"num_clusters": 4, "seed": 5, "stability_runs": 0}')`);
    const [single] = await rows<{ mean_squared_distance: number }>(t.pool, `SELECT mean_squared_distance FROM ml_evaluate('single_k4')`);
    expect(sweepTrial!.mean_squared_distance).toBeCloseTo(single!.mean_squared_distance, 12);
  });
});

describe('a sweep under a long lease (--lease-seconds 120)', () => {
  it("two sidecars: every trial is trained exactly once, and each trial's lease is the worker's, not a fixed 30 s", async () => {
    const u = await freshDatabase('lease');
    try {
      await u.worker({ id: 'lease-a', leaseSeconds: 120 });
      await u.worker({ id: 'lease-b', leaseSeconds: 120 });
      await u.pool.query(`CREATE TABLE public.pts AS SELECT random() AS a, random() AS b, random() AS c, random() AS d FROM generate_series(1, 60000)`);
      const [{ job }] = (await rows<{ job: string }>(
        u.pool,
        `SELECT ml_create_model('long_lease', 'kmeans', 'SELECT * FROM public.pts', '{"num_clusters": {"range": [2, 9]}, "seed": 3, "stability_runs": 0}') AS job`,
      )) as [{ job: string }];
      const leases = new Set<number>();
      for (;;) {
        const running = await rows<{ s: number }>(
          u.pool,
          `SELECT round(extract(epoch FROM lease_expires_at - heartbeat_at))::int AS s FROM ml.jobs WHERE parent_id = $1 AND status = 'running'`,
          [job],
        );
        for (const r of running) leases.add(r.s);
        const [j] = await rows<{ status: string }>(u.pool, 'SELECT status FROM ml.jobs WHERE id = $1', [job]);
        if (j!.status !== 'training' && j!.status !== 'queued') break;
        await new Promise((r) => setTimeout(r, 15));
      }
      await u.pool.query('SELECT ml_wait($1)', [job]);
      expect([...leases]).toEqual([120]);
      const trials = await rows<{ attempts: number; runs: number; status: string }>(
        u.pool,
        `SELECT attempts, jsonb_array_length(history) AS runs, status FROM ml.jobs WHERE parent_id = $1`,
        [job],
      );
      expect(trials).toHaveLength(8);
      expect(trials.every((x) => x.attempts === 1 && x.runs === 1 && x.status === 'done')).toBe(true);
    } finally {
      await u.close();
    }
  });
});
