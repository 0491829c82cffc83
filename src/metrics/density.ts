import { calinskiHarabasz, daviesBouldin, memberMeans, silhouette } from './clustering.ts';
import { dbcv } from './dbcv.ts';
import { makeSpace, type Space } from '../models/kmeans/geometry.ts';

// The metrics of a density clustering (HDBSCAN): the centroid metrics over the clustered rows
// (noise left out), the noise share, and DBCV over every row.

export type DensityMetrics = ReturnType<typeof densityMetrics>;

export function densityMetrics(space: Space, X: Float64Array, n: number, d: number, labels: Int32Array, k: number, seed: number) {
  const clustered = clusterMembers(X, n, d, labels);
  const cs = space.distance === 'euclidean' ? clustered.space : makeSpace(clustered.space.X, clustered.space.n, d, 'cosine');
  const { means } = memberMeans(cs, clustered.labels, k);
  let msd = 0;
  for (let i = 0; i < cs.n; i++) {
    const c = clustered.labels[i]!;
    let acc = 0;
    for (let j = 0; j < d; j++) acc += (cs.X[i * d + j]! - means[c * d + j]!) ** 2;
    msd += acc;
  }
  const sil = silhouette(cs, clustered.labels, k, seed);
  return {
    num_clusters: k,
    noise_fraction: (n - clustered.space.n) / n,
    davies_bouldin_index: daviesBouldin(cs, clustered.labels, k),
    mean_squared_distance: cs.n ? msd / cs.n : null,
    silhouette_score: sil.score,
    silhouette_sample_size: sil.sampleSize,
    calinski_harabasz_score: calinskiHarabasz(cs, clustered.labels, k),
    dbcv: dbcv(space, labels, seed),
  };
}

/** The non-noise rows, as their own space (metrics are over clustered rows only). */
export function clusterMembers(X: Float64Array, n: number, d: number, labels: Int32Array): { space: Space; labels: Int32Array } {
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (labels[i]! >= 0) keep.push(i);
  const Y = new Float64Array(keep.length * d);
  keep.forEach((r, i) => Y.set(X.subarray(r * d, r * d + d), i * d));
  return { space: makeSpace(Y, keep.length, d, 'euclidean'), labels: Int32Array.from(keep, (r) => labels[r]!) };
}
