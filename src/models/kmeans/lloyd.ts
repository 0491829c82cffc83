import { norms, pointDist2, type Space } from './geometry.ts';
import { kernels } from './kernels.ts';

export interface IterationInfo {
  iteration: number;
  loss: number; // mean squared distance to the nearest centroid
  durationMs: number;
  clusterInfo: { centroid_id: number; cluster_radius: number; cluster_size: number }[];
  mode?: 'in_database'; // a Lloyd step run as an aggregate in the database
  bytes?: number; // what the step brought to the sidecar
}

export interface LloydOptions {
  maxIterations: number;
  earlyStop: boolean;
  minRelProgress: number;
  /** Called after each iteration; may throw to stop (cancel, shutdown, lease lost). */
  onIteration?: (info: IterationInfo) => Promise<void> | void;
  /** Checked after each iteration: true ends training with the current (consistent) state. */
  timeUp?: () => boolean;
}

export interface LloydResult {
  centroids: Float64Array; // k x d
  labels: Int32Array;
  dist2: Float64Array; // squared distance of each row to its centroid
  loss: number;
  iterations: IterationInfo[];
  converged: boolean;
  timedOut: boolean;
}

/**
 * Lloyd's algorithm on typed arrays. Each iteration assigns every row to its nearest centroid
 * (the loss of that iteration), then moves each centroid to the mean of its rows. It stops when
 * no row changes cluster, after maxIterations, or (earlyStop) when the loss improved by less
 * than minRelProgress. The returned centroids are the ones the returned labels were assigned
 * to, so a model's predictions reproduce its training labels.
 */
export async function lloyd(s: Space, init: Float64Array, k: number, opts: LloydOptions): Promise<LloydResult> {
  const { n, d } = s;
  const C = Float64Array.from(init);
  const labels = new Int32Array(n).fill(-1);
  const dist2 = new Float64Array(n);
  const sums = new Float64Array(k * d);
  const counts = new Float64Array(k);
  const within = new Float64Array(k);
  const iterations: IterationInfo[] = [];
  let prevLoss = Infinity;
  let converged = false;
  let timedOut = false;
  // Euclidean: Hamerly's bound lets a row keep its centroid without measuring the others.
  const bounded = s.distance === 'euclidean' && k > 1;
  const lower = bounded ? new Float64Array(n) : null;
  const previous = bounded ? new Float64Array(k * d) : null;
  let drift = 0;
  for (let it = 0; it < opts.maxIterations; it++) {
    const t0 = performance.now();
    const changed = lower ? assignBounded(s, C, k, labels, dist2, lower, drift) : assign(s, C, k, labels, dist2);
    let loss = 0;
    counts.fill(0);
    within.fill(0);
    for (let i = 0; i < n; i++) {
      loss += dist2[i]!;
      counts[labels[i]!]!++;
      within[labels[i]!]! += dist2[i]!;
    }
    loss /= n;
    const info: IterationInfo = {
      iteration: it,
      loss,
      durationMs: performance.now() - t0,
      clusterInfo: Array.from({ length: k }, (_, c) => ({
        centroid_id: c + 1,
        cluster_radius: counts[c]! > 0 ? Math.sqrt(within[c]! / counts[c]!) : 0,
        cluster_size: counts[c]!,
      })),
    };
    iterations.push(info);
    await opts.onIteration?.(info);
    if (it > 0 && changed === 0) {
      converged = true;
      break;
    }
    if (opts.timeUp?.()) {
      timedOut = true;
      break;
    }
    if (opts.earlyStop && it > 0 && prevLoss > 0 && (prevLoss - loss) / prevLoss < opts.minRelProgress) break;
    if (it === opts.maxIterations - 1) break;
    prevLoss = loss;
    previous?.set(C);
    updateCentroids(s, C, k, labels, dist2, sums, counts);
    if (previous) {
      drift = 0;
      for (let c = 0; c < k; c++) drift = Math.max(drift, Math.sqrt(pointDist2('euclidean', C, c * d, previous, c * d, d)));
    }
  }
  const loss = iterations.length ? iterations[iterations.length - 1]!.loss : NaN;
  return { centroids: C, labels, dist2, loss, iterations, converged, timedOut };
}

/**
 * assign() for Euclidean rows with Hamerly's lower bounds: lower[i] bounds from below the
 * distance of row i to every centroid but its own. After the centroids moved by at most
 * `drift`, a row whose exact distance to its own (moved) centroid is below lower[i] - drift
 * keeps it, for one distance instead of k; the others are measured against every centroid,
 * which resets their bound. Labels and distances are exactly assign()'s (`labels[i] < 0`: not
 * yet assigned). On 1M x 8, k = 8 the second and later passes cost ~1/4 of a full one.
 */
export function assignBounded(s: Space, C: Float64Array, k: number, labels: Int32Array, dist2: Float64Array, lower: Float64Array, drift: number): number {
  return kernels(s.d).nearestBounded(s.X, C, s.n, k, labels, dist2, lower, drift);
}

/**
 * Assigns each row to its nearest centroid; returns how many rows changed cluster. (Kept apart
 * from assignBounded: tracking the second nearest made plain assignment 30% slower.)
 */
export function assign(s: Space, C: Float64Array, k: number, labels: Int32Array, dist2: Float64Array): number {
  const { nearestEuclidean, nearestCosine } = kernels(s.d);
  if (s.distance === 'euclidean') return nearestEuclidean(s.X, C, s.n, k, labels, dist2, null);
  return nearestCosine(s.X, C, s.n, k, labels, dist2, norms(C, k, s.d));
}

/** Centroids = means of their rows; an empty cluster takes the row farthest from its centroid. */
export function updateCentroids(
  s: Space,
  C: Float64Array,
  k: number,
  labels: Int32Array,
  dist2: Float64Array,
  sums: Float64Array,
  counts: Float64Array,
): void {
  const { X, n, d } = s;
  sums.fill(0);
  counts.fill(0);
  kernels(d).accumulate(X, n, labels, sums, counts);
  const taken = new Set<number>();
  for (let c = 0; c < k; c++) {
    if (counts[c]! > 0) {
      for (let j = 0; j < d; j++) C[c * d + j] = sums[c * d + j]! / counts[c]!;
      continue;
    }
    let far = -1;
    for (let i = 0; i < n; i++) if (!taken.has(i) && (far < 0 || dist2[i]! > dist2[far]!)) far = i;
    taken.add(far);
    C.set(X.subarray(far * d, far * d + d), c * d);
  }
}
