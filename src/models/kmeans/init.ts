import { UserError } from '../../util/errors.ts';
import type { Random } from '../../util/random.ts';
import { rowDist2, type Space } from './geometry.ts';

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * Greedy k-means++ (as scikit-learn does): each new centre is the best of 2 + ln(k) candidates
 * drawn with probability proportional to the squared distance to the nearest chosen centre.
 */
export async function kmeansPlusPlus(s: Space, k: number, rng: Random): Promise<Float64Array> {
  const { n, d, X } = s;
  const C = new Float64Array(k * d);
  const trials = 2 + Math.floor(Math.log(k));
  const first = rng.int(n);
  C.set(X.subarray(first * d, first * d + d), 0);
  const closest = new Float64Array(n);
  let potential = 0;
  for (let i = 0; i < n; i++) {
    closest[i] = rowDist2(s, i, C, 0, 1);
    potential += closest[i]!;
  }
  const candidate = new Float64Array(n);
  const best = new Float64Array(n);
  for (let c = 1; c < k; c++) {
    let bestPot = Infinity;
    let bestIdx = -1;
    for (let t = 0; t < trials; t++) {
      const idx = potential > 0 ? sampleIndex(closest, potential, rng) : rng.int(n);
      let pot = 0;
      for (let i = 0; i < n; i++) {
        const dd = Math.min(closest[i]!, rowDist2(s, i, X, idx * d, 1));
        candidate[i] = dd;
        pot += dd;
      }
      if (pot < bestPot) {
        bestPot = pot;
        bestIdx = idx;
        best.set(candidate);
      }
    }
    C.set(X.subarray(bestIdx * d, bestIdx * d + d), c * d);
    closest.set(best);
    potential = bestPot;
    if (n * d > 200_000) await yieldToEventLoop();
  }
  return C;
}

/** m rows drawn uniformly with replacement, side by side. */
export function sampleSpace(s: Space, m: number, rng: Random): Space {
  const { d } = s;
  const X = new Float64Array(m * d);
  for (let r = 0, q = 0; r < m; r++) {
    const p = rng.int(s.n) * d;
    for (let j = 0; j < d; j++) X[q++] = s.X[p + j]!;
  }
  return { X, n: m, d, distance: s.distance };
}

function sampleIndex(weights: Float64Array, total: number, rng: Random): number {
  let r = rng.next() * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i]!;
    if (r < 0) return i;
  }
  // Rounding left a sliver: take the last row with weight.
  for (let i = weights.length - 1; i >= 0; i--) if (weights[i]! > 0) return i;
  return 0;
}

/** k distinct rows chosen uniformly (BigQuery ML's RANDOM). */
export function randomInit(s: Space, k: number, rng: Random): Float64Array {
  const { n, d, X } = s;
  const C = new Float64Array(k * d);
  const chosen = new Set<number>();
  while (chosen.size < k) chosen.add(rng.int(n));
  let c = 0;
  for (const i of chosen) C.set(X.subarray(i * d, i * d + d), d * c++);
  return C;
}

/** The rows whose flag column is true are the initial centroids (BigQuery ML's CUSTOM). */
export function customInit(s: Space, k: number, flags: Uint8Array, column: string): Float64Array {
  const { n, d, X } = s;
  const rows: number[] = [];
  for (let i = 0; i < n; i++) if (flags[i]) rows.push(i);
  if (rows.length !== k) {
    throw new UserError(
      `column "${column}" ("kmeans_init_col") is true on ${rows.length} rows, but num_clusters is ${k}; they must be equal`,
    );
  }
  const C = new Float64Array(k * d);
  rows.forEach((i, c) => C.set(X.subarray(i * d, i * d + d), c * d));
  return C;
}
