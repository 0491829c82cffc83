import { describe, expect, it } from 'vitest';
import { CoreSearch } from '../src/models/hdbscan/core-distances.ts';
import { coreDistances, mutualReachabilityMst } from '../src/models/hdbscan/graph.ts';
import { buildKdTree } from '../src/models/hdbscan/kdtree.ts';
import { spatialSpanningTree } from '../src/models/hdbscan/spatial.ts';
import { treeMaxDims } from '../src/models/hdbscan/train.ts';
import { makeSpace } from '../src/models/kmeans/geometry.ts';
import { hdbscanHelperEntry } from '../src/models/hdbscan/off-thread.ts';
import { trainHdbscan, type HdbscanOptions } from '../src/models/hdbscan/train.ts';
import { Random } from '../src/util/random.ts';

// The k-d tree passes (k-nearest-neighbour core distances, Borůvka on both threads) against
// the O(n^2) ones kept as the oracle: the same spanning tree, hence identical labels,
// membership probabilities and outlier scores, on data built to tie (integer grids, duplicate
// rows), in 1 to 24 dimensions, for both metrics and both selection methods.

function data(kind: 'blobs' | 'grid' | 'duplicates' | 'uniform' | 'clumps', n: number, d: number, seed: number): Float64Array {
  const rng = new Random(seed);
  const X = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = i % 5;
    for (let j = 0; j < d; j++) {
      const g = rng.next() + rng.next() + rng.next() - 1.5;
      let v = kind === 'uniform' ? rng.next() * 10 : c * 4 * ((j + c) % 2) + g * (0.5 + c / 4);
      if (kind === 'grid') v = Math.round(v * 2) / 2;
      if (kind === 'duplicates' && i % 3 !== 0) v = X[(i - (i % 3)) * d + j]!;
      if (kind === 'clumps' && i >= 20) v = X[(i % 20) * d + j]!; // 20 points, each 75 times: leaves of identical rows
      X[i * d + j] = v;
    }
  }
  return X;
}

const base: HdbscanOptions = { minClusterSize: 15, minSamples: 8, method: 'eom', epsilon: 0, distance: 'euclidean' };

async function both(X: Float64Array, n: number, d: number, o: Partial<HdbscanOptions> = {}, threads = false) {
  const opts = { ...base, ...o, helperEntry: threads ? hdbscanHelperEntry().href : undefined };
  const fast = await trainHdbscan(X, n, d, opts);
  const exact = await trainHdbscan(X, n, d, { ...opts, exact: true });
  return { fast, exact };
}

describe('hdbscan on a k-d tree', () => {
  const cases: [string, 'blobs' | 'grid' | 'duplicates' | 'uniform' | 'clumps', number, number, Partial<HdbscanOptions>][] = [
    ['blobs, 2-D', 'blobs', 3000, 2, {}],
    ['blobs, 5-D, leaf selection', 'blobs', 3000, 5, { method: 'leaf' }],
    ['blobs, 8-D, min_samples 1', 'blobs', 2500, 8, { minSamples: 1 }],
    ['an integer grid (ties everywhere), 3-D', 'grid', 3000, 3, {}],
    ['duplicate rows (zero distances), 4-D', 'duplicates', 3000, 4, { minSamples: 5 }],
    ['uniform noise, 2-D', 'uniform', 2000, 2, { minClusterSize: 40 }],
    ['blobs, 24-D', 'blobs', 1500, 24, {}],
    ['blobs, 1-D', 'blobs', 2000, 1, {}],
    // from min_samples 100 on, a leaf's rows are searched together (core-distances.ts)
    ['blobs, 8-D, min_samples 150 (rows searched a leaf at a time)', 'blobs', 3000, 8, { minSamples: 150, minClusterSize: 150 }],
    ['an integer grid, 3-D, min_samples 120', 'grid', 3000, 3, { minSamples: 120, minClusterSize: 60 }],
    ['duplicate rows, 4-D, min_samples 100', 'duplicates', 3000, 4, { minSamples: 100, minClusterSize: 45 }],
  ];
  for (const [name, kind, n, d, o] of cases) {
    it(`${name}: identical labels, probabilities and outlier scores to the O(n^2) passes`, async () => {
      const X = data(kind, n, d, n + d);
      const { fast, exact } = await both(X, n, d, o);
      expect(fast.k).toBe(exact.k);
      expect(fast.k).toBeGreaterThan(0);
      expect(Array.from(fast.labels)).toEqual(Array.from(exact.labels));
      expect(Array.from(fast.probabilities)).toEqual(Array.from(exact.probabilities));
      expect(Array.from(fast.outlierScores)).toEqual(Array.from(exact.outlierScores));
      expect(fast.reach).toEqual(exact.reach);
    });
  }

  it('core distances, a leaf at a time: the k-th smallest of every distance, computed by brute force', () => {
    for (const [kind, n, d] of [['blobs', 1200, 8], ['grid', 1000, 3], ['clumps', 1500, 2], ['blobs', 900, 13]] as const) {
      const X = data(kind, n, d, 11);
      const t = buildKdTree(X, n, d, kind === 'blobs' ? 64 : 32);
      for (const k of [1, 2, 40, 257, n]) {
        const core = new Float64Array(n);
        new CoreSearch(t, k).leaves(core, 0, t.leaves.length);
        const all = new Float64Array(n);
        for (let p = 0; p < n; p += 7) {
          for (let q = 0; q < n; q++) {
            let v = 0;
            for (let j = 0; j < d; j++) v += (t.P[p * d + j]! - t.P[q * d + j]!) ** 2;
            all[q] = v;
          }
          all.sort();
          expect(core[p], `${kind}, ${d}-D, k = ${k}, tree position ${p}`).toBe(Math.sqrt(all[k - 1]!));
        }
      }
    }
  });

  it('40 one-hot dimensions (the tree passes from 20,000 rows on): the exact passes’ core distances and spanning tree', async () => {
    expect([treeMaxDims(5_000), treeMaxDims(10_000), treeMaxDims(20_000), treeMaxDims(1_000_000)]).toEqual([24, 24, 44, 64]);
    const n = 2500, d = 40;
    const rng = new Random(3);
    const X = new Float64Array(n * d);
    for (let i = 0; i < n; i++) for (let g = 0; g < 8; g++) X[i * d + g * 5 + (rng.next() < 0.6 ? (i % 6 + g) % 5 : Math.floor(rng.next() * 5))] = 1;
    for (const minSamples of [10, 150]) {
      const tree = await spatialSpanningTree(X, n, d, minSamples, null, async () => {});
      const space = makeSpace(X, n, d, 'euclidean');
      const core = coreDistances(space, minSamples);
      expect(Array.from(tree.core)).toEqual(Array.from(core));
      const key = (e: { a: number; b: number; weight: number }) => `${e.a}-${e.b}:${e.weight}`;
      expect(tree.edges.map(key).sort()).toEqual(mutualReachabilityMst(space, core).map(key).sort());
    }
  });

  it('on both threads (shared memory, chunks from a shared counter): the same labels as one thread and as the oracle', async () => {
    const n = 24_000, d = 3;
    const X = data('grid', n, d, 7);
    const { fast, exact } = await both(X, n, d, { minClusterSize: 60 }, true);
    expect(Array.from(fast.labels)).toEqual(Array.from(exact.labels));
    expect(Array.from(fast.outlierScores)).toEqual(Array.from(exact.outlierScores));
    // large min_samples: leaves searched together, on both threads, against one thread
    const large = { ...base, minClusterSize: 240, minSamples: 240 };
    const two = await trainHdbscan(X, n, d, { ...large, helperEntry: hdbscanHelperEntry().href });
    const one = await trainHdbscan(X, n, d, large);
    expect(two.k).toBeGreaterThan(1);
    expect(Array.from(two.labels)).toEqual(Array.from(one.labels));
    expect(Array.from(two.outlierScores)).toEqual(Array.from(one.outlierScores));
  });

  it('cosine: the labels of the exact passes (the tree measures chords of unit rows)', async () => {
    const X = data('blobs', 2000, 4, 3).map((v) => v + 3);
    const { fast, exact } = await both(X, 2000, 4, { distance: 'cosine' });
    expect(Array.from(fast.labels)).toEqual(Array.from(exact.labels));
  });
});
