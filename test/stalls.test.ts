import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchStalls } from '../bench/stalls.ts';
import { freshDatabase, type TestDb } from './helpers.ts';

// No job freezes the sidecar: the longest event-loop stall (perf_hooks.monitorEventLoopDelay,
// logged by the worker with each finished job) stays under 250 ms for every kind of job —
// k-means with its stability and surrogate explanation, HDBSCAN with its metrics, boosted
// trees, logistic regression, auto (every candidate, the random forest, metrics, SHAP) and a
// PCA of 400 columns (its eigen-decomposition on a worker thread).
// A sidecar process of its own, as in production; sizes where each job takes about a second
// or more (bench/stalls.ts prints the same table at 300,000 rows).

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('stalls');
});
afterAll(async () => t?.close());

describe('event-loop stalls', () => {
  it('stay under 250 ms during every kind of job', async () => {
    const r = await benchStalls({ url: t.url, pool: t.pool, roles: t.roles, close: async () => undefined }, { rows: 100_000, densityRows: 10_000 });
    expect(r.map((c) => c.job)).toEqual(['trivial (baseline)', 'k-means k=8', 'HDBSCAN', 'boosted trees', 'logistic regression', 'auto (candidates, metrics, SHAP)', 'PCA, 400 columns']);
    for (const c of r) expect(c.stallMs, `${c.job}: ${c.stallMs} ms`).toBeLessThan(250);
  });
});
