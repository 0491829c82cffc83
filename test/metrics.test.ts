import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calinskiHarabasz, clusteringMetrics, daviesBouldin, silhouette } from '../src/metrics/clustering.ts';
import { lloyd } from '../src/models/kmeans/lloyd.ts';
import { makeSpace } from '../src/models/kmeans/geometry.ts';
import { blobs } from './data.ts';
import { freshDatabase, rows, type TestDb } from './helpers.ts';

// Independent implementations, written the textbook way (scikit-learn's definitions), to check
// the product's single-pass versions against.
function means(X: number[][], labels: number[], k: number): number[][] {
  return Array.from({ length: k }, (_, c) => {
    const members = X.filter((_, i) => labels[i] === c);
    return X[0]!.map((_, j) => members.reduce((s, r) => s + r[j]!, 0) / members.length);
  });
}
const dist = (a: number[], b: number[]) => Math.sqrt(a.reduce((s, v, j) => s + (v - b[j]!) ** 2, 0));

function textbookDaviesBouldin(X: number[][], labels: number[], k: number): number {
  const mu = means(X, labels, k);
  const S = mu.map((m, c) => {
    const members = X.filter((_, i) => labels[i] === c);
    return members.reduce((s, r) => s + dist(r, m), 0) / members.length;
  });
  let total = 0;
  for (let a = 0; a < k; a++) {
    let worst = 0;
    for (let b = 0; b < k; b++) if (a !== b) worst = Math.max(worst, (S[a]! + S[b]!) / dist(mu[a]!, mu[b]!));
    total += worst;
  }
  return total / k;
}

function textbookSilhouette(X: number[][], labels: number[], k: number): number {
  let total = 0;
  for (let i = 0; i < X.length; i++) {
    const avg = (c: number) => {
      const others = X.filter((_, j) => labels[j] === c && j !== i);
      return others.reduce((s, r) => s + dist(r, X[i]!), 0) / others.length;
    };
    const a = avg(labels[i]!);
    let b = Infinity;
    for (let c = 0; c < k; c++) if (c !== labels[i]) b = Math.min(b, avg(c));
    total += (b - a) / Math.max(a, b);
  }
  return total / X.length;
}

function textbookCalinskiHarabasz(X: number[][], labels: number[], k: number): number {
  const n = X.length;
  const mu = means(X, labels, k);
  const all = X[0]!.map((_, j) => X.reduce((s, r) => s + r[j]!, 0) / n);
  let between = 0;
  let within = 0;
  for (let c = 0; c < k; c++) between += labels.filter((l) => l === c).length * dist(mu[c]!, all) ** 2;
  X.forEach((r, i) => (within += dist(r, mu[labels[i]!]!) ** 2));
  return (between * (n - k)) / (within * (k - 1));
}

describe('clustering metrics', () => {
  const n = 400;
  const d = 3;
  const k = 4;
  const { X, truth } = blobs(21, k, n / k, d, 2, 4);
  const rowsX = Array.from({ length: n }, (_, i) => Array.from(X.subarray(i * d, i * d + d)));
  const labels = Int32Array.from(truth);
  const space = makeSpace(X, n, d, 'euclidean');

  it('davies-bouldin matches an independent computation', () => {
    expect(daviesBouldin(space, labels, k)).toBeCloseTo(textbookDaviesBouldin(rowsX, Array.from(labels), k), 10);
  });
  it('silhouette (exact up to 2,000 rows) matches an independent computation', () => {
    const s = silhouette(space, labels, k, 1);
    expect(s.sampleSize).toBe(n);
    expect(s.score).toBeCloseTo(textbookSilhouette(rowsX, Array.from(labels), k), 10);
  });
  it('calinski-harabasz matches an independent computation', () => {
    expect(calinskiHarabasz(space, labels, k)).toBeCloseTo(textbookCalinskiHarabasz(rowsX, Array.from(labels), k), 8);
  });
  it('after Lloyd converged, the indices taken from its centroids and distances equal the independent ones', async () => {
    // A far start, so that Lloyd moves and then stops because no row changed cluster.
    const init = Float64Array.from({ length: k * d }, (_, i) => (i % 5) - 2);
    const fit = await lloyd(space, init, k, { maxIterations: 100, earlyStop: false, minRelProgress: 0 });
    expect(fit.converged).toBe(true);
    const fitLabels = Array.from(fit.labels);
    const m = clusteringMetrics(space, fit.labels, fit.dist2, k, 1, fit.centroids);
    expect(m.davies_bouldin_index).toBeCloseTo(textbookDaviesBouldin(rowsX, fitLabels, k), 10);
    expect(m.calinski_harabasz_score).toBeCloseTo(textbookCalinskiHarabasz(rowsX, fitLabels, k), 8);
    expect(m.silhouette_score).toBeCloseTo(textbookSilhouette(rowsX, fitLabels, k), 10);
  });
});

describe('ml_evaluate against an independent computation from SQL data', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await freshDatabase('metrics', { demo: true });
    await t.worker();
  });
  afterAll(async () => t?.close());

  it('davies-bouldin, mean squared distance, silhouette and calinski-harabasz equal the textbook values on the standardized, one-hot data', async () => {
    await t.pool.query(
      `CALL ml_train('seg', 'kmeans', 'SELECT * FROM demo.customer_features', '{"num_clusters": 5, "exclude": ["customer_id"], "seed": 3}')`,
    );
    // The test builds model space itself: z-scores with the population standard deviation,
    // one column per category.
    const data = await rows<Record<string, number | string>>(
      t.pool,
      `SELECT c.*, p.centroid_id FROM demo.customer_features c
         JOIN ml_predict('seg', 'SELECT * FROM demo.customer_features') p ON p.input->>'customer_id' = c.customer_id`,
    );
    const numeric = ['recency_days', 'frequency', 'monetary', 'avg_basket', 'discount_share'];
    const stats = numeric.map((f) => {
      const v = data.map((r) => Number(r[f]));
      const mean = v.reduce((s, x) => s + x, 0) / v.length;
      return { mean, sd: Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length) };
    });
    const cats = { segment: ['Consumer', 'Corporate', 'Home Office'], region: ['Central', 'East', 'South', 'West'] };
    const Xs = data.map((r) => [
      ...numeric.map((f, i) => (Number(r[f]) - stats[i]!.mean) / stats[i]!.sd),
      ...cats.segment.map((c) => (r.segment === c ? 1 : 0)),
      ...cats.region.map((c) => (r.region === c ? 1 : 0)),
    ]);
    const labels = data.map((r) => Number(r.centroid_id) - 1);
    const [e] = await rows<{ davies_bouldin_index: number; mean_squared_distance: number; silhouette_score: number; calinski_harabasz_score: number }>(
      t.pool,
      `SELECT * FROM ml_evaluate('seg')`,
    );
    expect(Math.abs(e!.davies_bouldin_index - textbookDaviesBouldin(Xs, labels, 5))).toBeLessThan(1e-6);
    expect(Math.abs(e!.silhouette_score - textbookSilhouette(Xs, labels, 5))).toBeLessThan(1e-6);
    expect(Math.abs(e!.calinski_harabasz_score / textbookCalinskiHarabasz(Xs, labels, 5) - 1)).toBeLessThan(1e-6);
    const mu = means(Xs, labels, 5);
    const msd = Xs.reduce((s, r, i) => s + dist(r, mu[labels[i]!]!) ** 2, 0) / Xs.length;
    expect(Math.abs(e!.mean_squared_distance - msd)).toBeLessThan(1e-6);
  });
});
