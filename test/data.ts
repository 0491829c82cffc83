import { Random } from '../src/util/random.ts';

/** Gaussian blobs: `centers` clusters of `perCluster` rows in `d` dimensions (row-major). */
export function blobs(seed: number, centers: number, perCluster: number, d: number, spread = 1, separation = 10): { X: Float64Array; truth: Int32Array } {
  const rng = new Random(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const C = Array.from({ length: centers }, () => Array.from({ length: d }, () => (rng.next() - 0.5) * 2 * separation));
  const n = centers * perCluster;
  const X = new Float64Array(n * d);
  const truth = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % centers;
    truth[i] = c;
    for (let j = 0; j < d; j++) X[i * d + j] = C[c]![j]! + gauss() * spread;
  }
  return { X, truth };
}

export function toRows(X: Float64Array, n: number, d: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from(X.subarray(i * d, i * d + d)));
}
