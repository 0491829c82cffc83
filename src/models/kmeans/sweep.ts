import { UserError } from '../../util/errors.ts';
import { defaultNumClusters } from './options.ts';

// Choosing k: the trials of a num_clusters sweep, the optimal one by the tuning objective, and
// the elbow of the mean-squared-distance curve.

export type TuningObjective = 'davies_bouldin_index' | 'silhouette_score' | 'calinski_harabasz_score' | 'elbow';

/** The k of each trial, from the validated num_clusters option (see ml.opt_num_clusters). */
export function trialKs(spec: unknown, rows: number): { ks: number[]; sweep: boolean } {
  if (spec === undefined || spec === null) return { ks: [defaultNumClusters(rows)], sweep: false };
  if (typeof spec === 'number') return { ks: [spec], sweep: false };
  let ks: number[];
  if (typeof spec === 'string') ks = range(2, 10); // "auto": BigQuery ML's default tuning range
  else if ('range' in (spec as object)) {
    const [lo, hi] = (spec as { range: [number, number] }).range;
    ks = range(lo, hi);
  } else ks = [...(spec as { candidates: number[] }).candidates].sort((a, b) => a - b);
  const usable = ks.filter((k) => k <= rows);
  if (usable.length === 0) {
    throw new UserError(`every "num_clusters" candidate (${ks.join(', ')}) exceeds the number of training rows (${rows})`);
  }
  return { ks: usable, sweep: true };
}

function range(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

export interface TrialScore {
  k: number;
  davies_bouldin_index: number | null;
  silhouette_score: number | null;
  calinski_harabasz_score: number | null;
  mean_squared_distance: number;
}

/**
 * The knee of the decreasing, convex curve of mean squared distance against k (Kneedle,
 * Satopaa et al. 2011): with k and the distance both scaled to [0, 1], the trial farthest below
 * the straight line from the first trial to the last. Null with fewer than three trials.
 */
export function elbowIndex(trials: TrialScore[]): number | null {
  if (trials.length < 3) return null;
  // trials may arrive in any order (other sidecars train some): the curve runs from the lowest k to the highest
  const k0 = Math.min(...trials.map((t) => t.k));
  const k1 = Math.max(...trials.map((t) => t.k));
  const ys = trials.map((t) => t.mean_squared_distance);
  const yMax = Math.max(...ys);
  const yMin = Math.min(...ys);
  if (yMax === yMin) return null;
  let best = -Infinity;
  let at: number | null = null;
  trials.forEach((t, i) => {
    const x = (t.k - k0) / (k1 - k0);
    const y = (t.mean_squared_distance - yMin) / (yMax - yMin);
    const gap = 1 - x - y;
    if (gap > best) {
      best = gap;
      at = i;
    }
  });
  return at;
}

/** The trial the model serves: lowest Davies-Bouldin (BigQuery's default), highest silhouette or CH, or the elbow. */
export function optimalIndex(trials: TrialScore[], objective: TuningObjective): number {
  if (trials.length === 1) return 0;
  if (objective === 'elbow') return elbowIndex(trials) ?? 0;
  const sign = objective === 'davies_bouldin_index' ? 1 : -1;
  let best = 0;
  trials.forEach((t, i) => {
    const v = t[objective];
    const b = trials[best]![objective];
    if (v !== null && (b === null || sign * v < sign * b)) best = i;
  });
  return best;
}
