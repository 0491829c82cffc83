import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchHdbscanCurve, benchHdbscanGoals } from '../bench/hdbscan.ts';
import { benchInDatabase } from '../bench/in-database.ts';
import { benchQueue } from '../bench/queue.ts';
import { benchScoring } from '../bench/scoring.ts';
import { benchStalls } from '../bench/stalls.ts';
import { benchSupervised } from '../bench/supervised.ts';
import { benchStreaming, benchTraining } from '../bench/training.ts';
import { freshDatabase, type TestDb } from './helpers.ts';

// A small run of every benchmark, so that `npm run bench` keeps working. Timings are not
// asserted (shared machines are noisy); what the benchmarks compute is.

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('bench');
});
afterAll(async () => t?.close());

describe('benchmark smoke runs', () => {
  it('training: measures COPY and the end-to-end training, and reads the objective', async () => {
    const r = await benchTraining({ url: t.url, pool: t.pool, roles: t.roles, close: async () => undefined }, { rows: 5000, k: 4, sklearn: false });
    expect(r.copySeconds).toBeGreaterThan(0);
    expect(r.ourSeconds).toBeGreaterThan(0);
    expect(r.ourObjective).toBeGreaterThan(0);
    expect(r.sklearnSeconds).toBeNull();
  });
  it('streaming: trains with batch_size on both sizes and prints the comparison', async () => {
    const db = { url: t.url, pool: t.pool, roles: t.roles, close: async () => undefined };
    const full = await benchTraining(db, { rows: 5000, k: 8, sklearn: false, name: 'smoke_full' });
    await benchStreaming(db, { rows: 5000, bigRows: 6000, fullObjective: full.ourObjective, batchSize: 1000 });
    const r = await t.pool.query(
      `SELECT DISTINCT model_name, (metrics->>'batch_size')::int AS b FROM ml_models WHERE model_name IN ('bench_stream_5000', 'bench_stream_6000') ORDER BY 1`,
    );
    expect(r.rows).toEqual([{ model_name: 'bench_stream_5000', b: 1000 }, { model_name: 'bench_stream_6000', b: 1000 }]);
  });
  it('scoring: the generated function, ml_predict and the hand-written baseline give the same assignments', async () => {
    const r = await benchScoring({ url: t.url, pool: t.pool, roles: t.roles, close: async () => undefined }, { rows: 5000 });
    expect(r.agree).toBe(true);
  });
  it('supervised: trains every family on the shared split and reads their metrics', async () => {
    const r = await benchSupervised({ url: t.url, pool: t.pool, roles: t.roles, close: async () => undefined }, { rows: 2000, sklearn: false, rounds: 1 });
    expect(r.map((c) => c.metric)).toEqual(['roc_auc', 'roc_auc', 'roc_auc', 'r2_score', 'roc_auc']);
    for (const c of r) {
      expect(c.ours).toBeGreaterThan(0.6);
      expect(c.oursSeconds).toBeGreaterThan(0);
      expect(c.fitSeconds).toBeGreaterThan(0);
      expect(c.fitSeconds).toBeLessThan(c.oursSeconds);
    }
    // auto is compared with the best single family it includes.
    expect(r[4]!.ours).toBeGreaterThanOrEqual(r[4]!.sklearn! - 0.02);
  });
  it('queue: latency and throughput with one and two sidecars', async () => {
    const r = await benchQueue({ url: t.url, pool: t.pool, roles: t.roles, close: async () => undefined }, { jobs: 6 });
    expect(r.notifyMedianMs).toBeGreaterThanOrEqual(0);
    expect(r.oneSidecarSeconds).toBeGreaterThan(0);
    expect(r.twoSidecarsSeconds).toBeGreaterThan(0);
  });
  it('hdbscan: the tree passes and the O(n^2) ones agree on the curve; the end-to-end goal runs through a sidecar', async () => {
    const curve = await benchHdbscanCurve({ sizes: () => [2500], dims: [3], exact: () => true, minSamples: 8 });
    expect(curve.map((p) => [p.dims, p.sameLabels])).toEqual([[3, true], [40, null]]);
    expect(curve[1]!.exactSeconds).toBeGreaterThan(0);
    const goals = await benchHdbscanGoals({ url: t.url, pool: t.pool, roles: t.roles, close: async () => undefined }, [{ rows: 3000, dims: 4, options: { min_samples: 5 } }]);
    expect(goals[0]!.seconds).toBeGreaterThan(0);
    expect(goals[0]!.peakRssMb).toBeGreaterThan(10);
  });
  it('in-database: a partitioned table, local (one fenced aggregate) and with postgres_fdw partitions (one shipped aggregate each)', async () => {
    const db = { url: t.url, pool: t.pool, roles: t.roles, close: async () => undefined };
    const local = await benchInDatabase(db, { rows: 30_000, partitions: 2, k: 3 });
    expect([local.aggregates, local.fenced, local.steps > 0, local.scanSeconds > 0]).toEqual([1, true, true, true]);
    const foreign = await benchInDatabase(db, { rows: 30_000, partitions: 2, k: 3, foreign: true });
    expect([foreign.aggregates, foreign.fenced, foreign.steps > 0]).toEqual([2, false, true]);
    expect(foreign.peakRssMb).toBeGreaterThan(10);
  });
  it('stalls: every job kind reports its longest event-loop stall', async () => {
    const r = await benchStalls({ url: t.url, pool: t.pool, roles: t.roles, close: async () => undefined }, { rows: 3000, densityRows: 600 });
    expect(r.map((c) => c.job)).toEqual(['trivial (baseline)', 'k-means k=8', 'HDBSCAN', 'boosted trees', 'logistic regression', 'auto (candidates, metrics, SHAP)', 'PCA, 400 columns']);
    for (const c of r) expect(Number.isInteger(c.stallMs) && c.stallMs >= 0 && c.seconds > 0, JSON.stringify(c)).toBe(true);
  });
});
