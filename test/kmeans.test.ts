import { describe, expect, it } from 'vitest';
import { kmeans as mlKmeans } from 'ml-kmeans';
import { makeSpace } from '../src/models/kmeans/geometry.ts';
import { kmeansPlusPlus } from '../src/models/kmeans/init.ts';
import { assign, assignBounded, lloyd, updateCentroids } from '../src/models/kmeans/lloyd.ts';
import { trainKmeans } from '../src/models/kmeans/train.ts';
import { elbowIndex } from '../src/models/kmeans/sweep.ts';
import { Random } from '../src/util/random.ts';
import { blobs, toRows } from './data.ts';

const objective = (X: Float64Array, n: number, d: number, C: number[][]) => {
  let total = 0;
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    for (const c of C) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (X[i * d + j]! - c[j]!) ** 2;
      best = Math.min(best, s);
    }
    total += best;
  }
  return total / n;
};

describe('k-means', () => {
  it('from the same initial centroids, converges to the same centroids and labels as ml-kmeans (the oracle)', async () => {
    const n = 1500;
    const d = 4;
    const k = 5;
    const { X } = blobs(3, k, n / k, d, 3, 6); // overlapping blobs: many iterations
    const space = makeSpace(X, n, d, 'euclidean');
    const init = await kmeansPlusPlus(space, k, new Random(11));
    const ours = await lloyd(space, init, k, { maxIterations: 500, earlyStop: true, minRelProgress: 0 });
    const oracle = mlKmeans(toRows(X, n, d), k, {
      initialization: Array.from({ length: k }, (_, c) => Array.from(init.subarray(c * d, c * d + d))),
      maxIterations: 500,
      tolerance: 0,
    });
    expect(ours.converged).toBe(true);
    expect(ours.iterations.length).toBeGreaterThan(3);
    expect(Array.from(ours.labels)).toEqual(oracle.clusters);
    for (let c = 0; c < k; c++) {
      for (let j = 0; j < d; j++) expect(ours.centroids[c * d + j]).toBeCloseTo(oracle.centroids[c]![j]!, 9);
    }
  });

  it('same data and same seed give an identical model; another seed may not', async () => {
    const { X } = blobs(5, 6, 200, 3, 4, 5);
    const opts = { numClusters: 6, initMethod: 'kmeans++' as const, distance: 'euclidean' as const, maxIterations: 300, earlyStop: true, minRelProgress: 0, seed: 42, nInit: 3 };
    const a = await trainKmeans(X, 1200, 3, opts);
    const b = await trainKmeans(X, 1200, 3, opts);
    expect(Array.from(b.centroids)).toEqual(Array.from(a.centroids));
    expect(Array.from(b.labels)).toEqual(Array.from(a.labels));
    const r = await trainKmeans(X, 1200, 3, { ...opts, initMethod: 'random', seed: 43 });
    expect(r.loss).toBeGreaterThan(0);
  });

  it('with default restarts, the objective is within 1% of the best of 30 ml-kmeans runs', async () => {
    const n = 3000;
    const d = 5;
    const { X } = blobs(9, 8, n / 8, d, 2.5, 6);
    const ours = await trainKmeans(X, n, d, { numClusters: 8, initMethod: 'kmeans++', distance: 'euclidean', maxIterations: 300, earlyStop: true, minRelProgress: 0, seed: 1, nInit: 10 });
    const rows = toRows(X, n, d);
    let best = Infinity;
    for (let s = 0; s < 30; s++) best = Math.min(best, objective(X, n, d, mlKmeans(rows, 8, { seed: s, maxIterations: 300 }).centroids));
    expect(ours.loss).toBeCloseTo(objective(X, n, d, toRows(ours.centroids, 8, d)), 9);
    expect(ours.loss).toBeLessThanOrEqual(best * 1.01);
  });

  it('cosine k-means assigns each row to the centroid of highest cosine similarity', async () => {
    const n = 600;
    const d = 3;
    const { X } = blobs(4, 3, n / 3, d, 1, 5);
    const m = await trainKmeans(X, n, d, { numClusters: 3, initMethod: 'kmeans++', distance: 'cosine', maxIterations: 300, earlyStop: true, minRelProgress: 0, seed: 2, nInit: 2 });
    for (let i = 0; i < n; i++) {
      let best = -Infinity;
      let bc = -1;
      for (let c = 0; c < 3; c++) {
        let dot = 0;
        let nx = 0;
        let nc = 0;
        for (let j = 0; j < d; j++) {
          dot += X[i * d + j]! * m.centroids[c * d + j]!;
          nx += X[i * d + j]! ** 2;
          nc += m.centroids[c * d + j]! ** 2;
        }
        const cos = dot / Math.sqrt(nx * nc);
        if (cos > best) {
          best = cos;
          bc = c;
        }
      }
      expect(m.labels[i]).toBe(bc);
      expect(m.dist2[i]).toBeCloseTo(1 - best, 9);
    }
  });

  it('an empty cluster is re-seeded with the farthest row, so k clusters come out', async () => {
    const n = 100;
    const X = new Float64Array(n);
    for (let i = 0; i < n; i++) X[i] = i < 40 ? 0 : i < 50 ? 1 : 10;
    // Three initial centroids, one far from every row: it would stay empty without re-seeding.
    const m = await lloyd(makeSpace(X, n, 1, 'euclidean'), Float64Array.from([0, 10, 1000]), 3, { maxIterations: 50, earlyStop: true, minRelProgress: 0 });
    const sizes = [0, 0, 0];
    for (const l of m.labels) sizes[l]!++;
    expect(sizes.every((s) => s > 0)).toBe(true);
  });
});

describe('restarts on worker threads', () => {
  it('give exactly the results of the same restarts run inline, and report every iteration', async () => {
    const { runRestarts } = await import('../src/models/kmeans/threads.ts');
    const n = 3000;
    const d = 3;
    const { X } = blobs(12, 5, n / 5, d, 3, 5);
    const space = makeSpace(X, n, d, 'euclidean');
    const tasks = Array.from({ length: 6 }, (_, i) => ({ index: i, k: 3 + (i % 3), seed: 100 + i }));
    const settings = { initMethod: 'kmeans++' as const, distance: 'euclidean' as const, maxIterations: 300, earlyStop: true, minRelProgress: 0 };
    let threadedIterations = 0;
    const threaded = await runRestarts(space, tasks, settings, async () => void threadedIterations++, 2, 0);
    const inline = await runRestarts(space, tasks, settings, async () => undefined, 1);
    for (let i = 0; i < tasks.length; i++) {
      expect(Array.from(threaded[i]!.centroids)).toEqual(Array.from(inline[i]!.centroids));
      expect(Array.from(threaded[i]!.labels)).toEqual(Array.from(inline[i]!.labels));
    }
    expect(threadedIterations).toBe(inline.reduce((s, r) => s + r.iterations.length, 0));
  });

  it('a progress callback that throws (cancel) stops every thread and the error comes back', async () => {
    const { runRestarts } = await import('../src/models/kmeans/threads.ts');
    const { X } = blobs(13, 4, 500, 3, 3, 5);
    const space = makeSpace(X, 2000, 3, 'euclidean');
    const tasks = Array.from({ length: 8 }, (_, i) => ({ index: i, k: 4, seed: i }));
    const settings = { initMethod: 'kmeans++' as const, distance: 'euclidean' as const, maxIterations: 300, earlyStop: true, minRelProgress: 0 };
    await expect(runRestarts(space, tasks, settings, async () => { throw new Error('cancelled'); }, 2, 0)).rejects.toThrow('cancelled');
  });
});

describe('stable ids', () => {
  it('the Hungarian algorithm finds the minimum-cost assignment (checked by brute force)', async () => {
    const { hungarian } = await import('../src/models/kmeans/stable-ids.ts');
    const rng = new Random(5);
    const perms = (a: number[]): number[][] => (a.length <= 1 ? [a] : a.flatMap((x, i) => perms([...a.slice(0, i), ...a.slice(i + 1)]).map((p) => [x, ...p])));
    for (let trial = 0; trial < 20; trial++) {
      const k = 2 + (trial % 5);
      const cost = Array.from({ length: k }, () => Array.from({ length: k }, () => rng.next()));
      const got = hungarian(cost);
      const total = (p: number[]) => p.reduce((s, j, i) => s + cost[i]![j]!, 0);
      const best = Math.min(...perms(Array.from({ length: k }, (_, i) => i)).map(total));
      expect(total(got)).toBeCloseTo(best, 12);
      expect(new Set(got).size).toBe(k);
    }
  });

  it('matching recovers a permutation of slightly moved centroids', async () => {
    const { matchCentroids } = await import('../src/models/kmeans/stable-ids.ts');
    const prev = Float64Array.from([0, 0, 10, 0, 0, 10, 10, 10]);
    const order = [2, 0, 3, 1]; // new centroid i continues previous centroid order[i]
    const next = new Float64Array(8);
    order.forEach((p, i) => next.set([prev[p * 2]! + 0.3, prev[p * 2 + 1]! - 0.2], i * 2));
    expect(matchCentroids(next, prev, 4, 2)).toEqual(order);
  });

  it('above 50,000 rows, restarts on a sample then Lloyd on every row reach the objective of full restarts', async () => {
    const n = 120_000;
    const d = 4;
    const k = 6;
    const { X } = blobs(21, k, n / k, d, 2.5, 5);
    const opts = { numClusters: k, initMethod: 'kmeans++' as const, distance: 'euclidean' as const, maxIterations: 300, earlyStop: true, minRelProgress: 0, seed: 5, nInit: 3 };
    const m = await trainKmeans(X, n, d, opts);
    expect(m.converged).toBe(true);
    // Full restarts, as below the threshold: k-means++ on every row, then Lloyd.
    const space = makeSpace(X, n, d, 'euclidean');
    let bestFull = Infinity;
    for (let run = 0; run < 3; run++) {
      const init = await kmeansPlusPlus(space, k, new Random(100 + run));
      bestFull = Math.min(bestFull, (await lloyd(space, init, k, { maxIterations: 300, earlyStop: true, minRelProgress: 0 })).loss);
    }
    expect(m.loss).toBeLessThanOrEqual(bestFull * 1.005);
    expect(m.loss).toBeCloseTo(objective(X, n, d, Array.from({ length: k }, (_, c) => Array.from(m.centroids.subarray(c * d, c * d + d)))), 9);
  });
});

describe('compiled assignment kernels', () => {
  // Written out per feature count up to 32 dimensions, loops above: both against plain loops here.
  for (const d of [3, 8, 40]) {
    for (const distance of ['euclidean', 'cosine'] as const) {
      it(`d = ${d}, ${distance}: nearest centroid, bounded assignment and member sums as computed by hand`, () => {
        const n = 500;
        const k = 6;
        const rng = new Random(d);
        const X = Float64Array.from({ length: n * d }, () => rng.next() * 4 - 2);
        const C = Float64Array.from({ length: k * d }, () => rng.next() * 4 - 2);
        const space = makeSpace(X, n, d, distance);
        const labels = new Int32Array(n).fill(-1);
        const dist2 = new Float64Array(n);
        assign(space, C, k, labels, dist2);
        const cn = Array.from({ length: k }, (_, c) => Math.hypot(...C.subarray(c * d, c * d + d)));
        for (let i = 0; i < n; i++) {
          const byHand = Array.from({ length: k }, (_, c) => {
            let sq = 0;
            let dot = 0;
            for (let j = 0; j < d; j++) {
              sq += (space.X[i * d + j]! - C[c * d + j]!) ** 2;
              dot += space.X[i * d + j]! * C[c * d + j]!;
            }
            return distance === 'euclidean' ? sq : Math.max(0, 1 - dot / cn[c]!);
          });
          const best = byHand.indexOf(Math.min(...byHand));
          expect([i, labels[i]]).toEqual([i, best]);
          expect(dist2[i]).toBeCloseTo(byHand[best]!, 12);
        }
        if (distance === 'euclidean') {
          const bounded = new Int32Array(n).fill(-1);
          const d2 = new Float64Array(n);
          const lower = new Float64Array(n);
          expect(assignBounded(space, C, k, bounded, d2, lower, 0)).toBe(n);
          expect(Array.from(bounded)).toEqual(Array.from(labels));
          for (let i = 0; i < n; i++) expect(lower[i]! ** 2).toBeGreaterThanOrEqual(d2[i]! * (1 - 1e-12));
        }
        const sums = new Float64Array(k * d);
        const counts = new Float64Array(k);
        const moved = Float64Array.from(C);
        updateCentroids(space, moved, k, labels, dist2, sums, counts);
        for (let c = 0; c < k; c++) {
          const members = Array.from(labels).flatMap((l, i) => (l === c ? [i] : []));
          expect(counts[c]).toBe(members.length);
          if (members.length === 0) continue;
          for (let j = 0; j < d; j++) expect(moved[c * d + j]).toBeCloseTo(members.reduce((s, i) => s + space.X[i * d + j]!, 0) / members.length, 12);
        }
      });
    }
  }
});

describe('the elbow of a k sweep', () => {
  it('is the trial farthest below the chord from the lowest k to the highest, in whatever order the trials finished', () => {
    // mean squared distance for k = 2..10 (a seed-003-like sweep); by hand: the gaps below the
    // chord are 0, .21, .274, .283, .267, .228, .166, .086, 0 — the knee is k = 5
    const msd = [2.713, 2.08, 1.723, 1.47, 1.263, 1.101, 0.982, 0.897, 0.824];
    const trials = msd.map((m, i) => ({ k: i + 2, mean_squared_distance: m, davies_bouldin_index: 1, silhouette_score: 0, calinski_harabasz_score: 0 }));
    expect(trials[elbowIndex(trials)!]!.k).toBe(5);
    const finished = [trials[8]!, trials[3]!, trials[0]!, trials[5]!, trials[1]!, trials[7]!, trials[2]!, trials[6]!, trials[4]!];
    expect(finished[elbowIndex(finished)!]!.k).toBe(5);
  });
});
