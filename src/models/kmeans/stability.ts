import { adjustedRandIndex } from '../../metrics/ari.ts';
import { Random } from '../../util/random.ts';
import { makeSpace, type DistanceType } from './geometry.ts';
import { assign } from './lloyd.ts';
import { trainKmeans } from './train.ts';

// "Will the result be different each time I run it?": the mean adjusted Rand index between
// the served model's labels and those of models retrained with other seeds on bootstrap
// samples. Computed on a uniform sample of at most SAMPLE rows, with `runs` retrains.

export const SAMPLE = 5000;

export async function stabilityScore(
  X: Float64Array,
  n: number,
  d: number,
  servedLabels: Int32Array,
  k: number,
  opts: { distance: DistanceType; seed: number; runs: number; initMethod: 'kmeans++' | 'random' },
): Promise<number | null> {
  if (opts.runs <= 0 || k < 2) return null;
  const rng = new Random(opts.seed ^ 0x5bd1e995);
  const m = Math.min(n, SAMPLE);
  const rows = n <= SAMPLE ? Int32Array.from({ length: n }, (_, i) => i) : Int32Array.from({ length: m }, () => rng.int(n));
  const Xs = new Float64Array(m * d);
  rows.forEach((r, i) => Xs.set(X.subarray(r * d, r * d + d), i * d));
  const served = Int32Array.from(rows, (r) => servedLabels[r]!);
  const sampleSpace = makeSpace(Xs, m, d, opts.distance);
  let total = 0;
  for (let b = 0; b < opts.runs; b++) {
    const Xb = new Float64Array(m * d);
    for (let i = 0; i < m; i++) {
      const r = rng.int(m);
      Xb.set(Xs.subarray(r * d, r * d + d), i * d);
    }
    const model = await trainKmeans(Xb, m, d, {
      numClusters: k,
      initMethod: opts.initMethod,
      distance: opts.distance,
      maxIterations: 300,
      earlyStop: true,
      minRelProgress: 0,
      seed: opts.seed + 1000 + b,
      nInit: 1,
      threads: 1,
    });
    const labels = new Int32Array(m);
    assign(sampleSpace, model.centroids, k, labels, new Float64Array(m));
    total += adjustedRandIndex(served, labels);
  }
  return total / opts.runs;
}
