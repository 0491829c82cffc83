import { UserError } from '../../util/errors.ts';
import type { Random } from '../../util/random.ts';
import { rowDist2, type Space } from './geometry.ts';
import { yieldToEventLoop } from '../../util/yield.ts';


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

/**
 * About m rows, in blocks of 32 consecutive rows at uniform random positions (with
 * replacement), side by side: whole blocks read memory in order, where single random rows each
 * missed the cache (100,000 of 1M x 8 rows: 35-45 -> 22-25 ms). Rows keep their order within a block, so a
 * sample's first rows are themselves a sample.
 */
export function sampleSpace(s: Space, m: number, rng: Random): Space {
  const { d } = s;
  const BLOCK = 32;
  const blocks = Math.ceil(m / BLOCK);
  const X = new Float64Array(blocks * BLOCK * d);
  let q = 0;
  for (let b = 0; b < blocks; b++) {
    const start = rng.int(Math.max(1, s.n - BLOCK + 1));
    const end = Math.min(s.n, start + BLOCK);
    X.set(s.X.subarray(start * d, end * d), q);
    q += (end - start) * d;
  }
  return { X: X.subarray(0, q), n: q / d, d, distance: s.distance };
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
