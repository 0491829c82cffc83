import { memberMeans } from '../../metrics/clustering.ts';
import type { StoredTrial } from './artifact.ts';
import { makeSpace, type Space } from './geometry.ts';
import { assign } from './lloyd.ts';
import { trainSweep, type KmeansModel, type SweepOptions } from './train.ts';
import type { IterationInfo } from './lloyd.ts';

// One k of a sweep, trained where a sidecar took it; and what the k-means job does with trained
// models before storing them: a trial trained by another
// sidecar made whole again, stable ids applied, the centroids shown to users.

export /** A trial trained elsewhere: its centroids, and labels recomputed here (the same assignment). */
function rebuild(space: Space, t: StoredTrial): KmeansModel {
  const C = Float64Array.from(t.centroids.flat());
  const labels = new Int32Array(space.n);
  const dist2 = new Float64Array(space.n);
  assign(space, C, t.k, labels, dist2);
  let loss = 0;
  for (let i = 0; i < space.n; i++) loss += dist2[i]!;
  return { centroids: C, labels, dist2, loss: loss / space.n, iterations: t.iterations, converged: t.converged, timedOut: t.timed_out, k: t.k, space, run: t.run };
}

export /**
 * What ml_centroids shows, in model space: the centroid, or for cosine models (whose centroids
 * live on unit-length rows) the mean of the members' un-normalised features.
 */
function shownCentroids(m: KmeansModel, X: Float64Array, n: number, d: number): Float64Array {
  return m.space.distance === 'euclidean' ? m.centroids : memberMeans(makeSpace(X, n, d, 'euclidean'), m.labels, m.k).means;
}

export /** Applies a renumbering in place: order[i] is the new position (0-based) of centroid i. */
function renumber(m: KmeansModel, order: number[]): void {
  const { k } = m;
  const d = m.space.d;
  const C = Float64Array.from(m.centroids);
  for (let c = 0; c < k; c++) m.centroids.set(C.subarray(c * d, c * d + d), order[c]! * d);
  for (let i = 0; i < m.labels.length; i++) m.labels[i] = order[m.labels[i]!]!;
  for (const it of m.iterations) {
    it.clusterInfo = it.clusterInfo
      .map((ci) => ({ ...ci, centroid_id: order[ci.centroid_id - 1]! + 1 }))
      .sort((a, b) => a.centroid_id - b.centroid_id);
  }
}

export type TrialSettings = Pick<SweepOptions, 'distance' | 'maxIterations' | 'earlyStop' | 'minRelProgress' | 'seed' | 'nInit' | 'deadline'> & {
  initMethod: 'kmeans++' | 'random';
};

/** One k of a sweep, as a trial stores it. */
export async function trainTrial(
  X: Float64Array,
  n: number,
  d: number,
  p: { k: number; settings: TrialSettings },
  onIteration: (run: number, info: IterationInfo) => Promise<void>,
): Promise<StoredTrial> {
  const [m] = await trainSweep(X, n, d, [p.k], p.settings, (_t, run, info) => onIteration(run, info));
  const C = m!.centroids;
  return {
    k: p.k,
    centroids: Array.from({ length: p.k }, (_, c) => Array.from(C.subarray(c * d, c * d + d))),
    iterations: m!.iterations,
    converged: m!.converged,
    timed_out: m!.timedOut,
    run: m!.run,
  };
}
