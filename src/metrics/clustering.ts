import { Random } from '../util/random.ts';
import { pointDist2, rowDist2, type Space } from '../models/kmeans/geometry.ts';
import { kernels } from '../models/kmeans/kernels.ts';

// Clustering quality metrics on model space, with scikit-learn's definitions (clusters are
// summarised by the mean of their members; empty clusters are ignored). Distances follow the
// model's metric: Euclidean, or sqrt(1 - cos) for cosine models.

// Silhouette is O(n^2): exact up to SILHOUETTE_EXACT_MAX rows, above on a uniform sample of
// SILHOUETTE_SAMPLE rows: larger samples cost most of a small model's training, and at 2,000
// rows the mean's standard error is ~0.005.
export const SILHOUETTE_EXACT_MAX = 2_000;
export const SILHOUETTE_SAMPLE = 2_000;

export interface ClusteringMetrics {
  davies_bouldin_index: number | null;
  mean_squared_distance: number;
  silhouette_score: number | null;
  silhouette_sample_size: number;
  calinski_harabasz_score: number | null;
}

export function memberMeans(s: Space, labels: Int32Array, k: number): { means: Float64Array; counts: Float64Array } {
  const { X, n, d } = s;
  const means = new Float64Array(k * d);
  const counts = new Float64Array(k);
  kernels(d).accumulate(X, n, labels, means, counts);
  for (let c = 0; c < k; c++) if (counts[c]! > 0) for (let j = 0; j < d; j++) means[c * d + j]! /= counts[c]!;
  return { means, counts };
}

function norm(A: Float64Array, o: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += A[o + j]! * A[o + j]!;
  return Math.sqrt(s);
}

type MemberMeans = ReturnType<typeof memberMeans>;

export function daviesBouldin(s: Space, labels: Int32Array, k: number, members: MemberMeans = memberMeans(s, labels, k)): number | null {
  const { n, d } = s;
  const { means } = members;
  const spread = new Float64Array(k); // summed distance of the members to their mean
  const meanNorm = Float64Array.from({ length: k }, (_, c) => norm(means, c * d, d));
  for (let i = 0; i < n; i++) spread[labels[i]!]! += Math.sqrt(rowDist2(s, i, means, labels[i]! * d, meanNorm[labels[i]!]));
  return daviesBouldinOf(s, members, spread);
}

function daviesBouldinOf(s: Space, { means, counts }: MemberMeans, spread: Float64Array): number | null {
  const { d } = s;
  const present: number[] = [];
  for (let c = 0; c < counts.length; c++) if (counts[c]! > 0) present.push(c);
  if (present.length < 2) return null;
  let total = 0;
  for (const a of present) {
    let worst = 0;
    for (const b of present) {
      if (a === b) continue;
      const m = Math.sqrt(pointDist2(s.distance, means, a * d, means, b * d, d));
      const r = m > 0 ? (spread[a]! / counts[a]! + spread[b]! / counts[b]!) / m : 0; // coincident means: scikit-learn treats the distance as infinite
      if (r > worst) worst = r;
    }
    total += worst;
  }
  return total / present.length;
}

export function calinskiHarabasz(s: Space, labels: Int32Array, k: number, members: MemberMeans = memberMeans(s, labels, k)): number | null {
  const { X, n, d } = s;
  const { means } = members;
  let within = 0;
  for (let i = 0, p = 0; i < n; i++, p += d) {
    const q = labels[i]! * d;
    for (let j = 0; j < d; j++) within += (X[p + j]! - means[q + j]!) ** 2;
  }
  return calinskiHarabaszOf(s, members, within);
}

/** From the member means, their counts and the within-cluster sum of squares. */
function calinskiHarabaszOf(s: Space, { means, counts }: MemberMeans, within: number): number | null {
  const { n, d } = s;
  const k = counts.length;
  const present = Array.from(counts).filter((c) => c > 0).length;
  if (present < 2 || n <= present) return null;
  const overall = new Float64Array(d); // the mean of every row, as the members' means weighted
  for (let c = 0; c < k; c++) if (counts[c]! > 0) for (let j = 0; j < d; j++) overall[j]! += (counts[c]! * means[c * d + j]!) / n;
  let between = 0;
  for (let c = 0; c < k; c++) {
    if (!counts[c]) continue;
    let acc = 0;
    for (let j = 0; j < d; j++) acc += (means[c * d + j]! - overall[j]!) ** 2;
    between += counts[c]! * acc;
  }
  return within === 0 ? 1 : (between * (n - present)) / (within * (present - 1));
}

/**
 * m distinct row numbers out of n, uniformly, in increasing order (Floyd's algorithm: m draws,
 * no array of all n rows).
 */
function sampleRows(n: number, m: number, rng: Random): Int32Array {
  const chosen = new Set<number>();
  for (let j = n - m; j < n; j++) {
    const t = rng.int(j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  return Int32Array.from(chosen).sort();
}

/**
 * Mean silhouette: exact when n <= 2,000, otherwise on a uniform sample of 2,000 rows drawn
 * with `seed` (the sample size is reported next to the score).
 */
export function silhouette(s: Space, labels: Int32Array, k: number, seed: number): { score: number | null; sampleSize: number } {
  const { n, d, X } = s;
  const rows = n <= SILHOUETTE_EXACT_MAX ? Int32Array.from({ length: n }, (_, i) => i) : sampleRows(n, SILHOUETTE_SAMPLE, new Random(seed));
  const m = rows.length;
  const sizes = new Float64Array(k);
  for (let a = 0; a < m; a++) sizes[labels[rows[a]!]!]!++;
  if (Array.from(sizes).filter((c) => c > 0).length < 2) return { score: null, sampleSize: m };
  const sums = new Float64Array(m * k); // per sampled row: summed distance to each cluster
  // The sampled rows side by side (and their labels): the O(m^2) loop then reads contiguous memory.
  const S = new Float64Array(m * d);
  const L = new Int32Array(m);
  for (let a = 0; a < m; a++) {
    S.set(X.subarray(rows[a]! * d, rows[a]! * d + d), a * d);
    L[a] = labels[rows[a]!]!;
  }
  const kern = kernels(d);
  if (s.distance === 'cosine') kern.pairSumsCosine(S, L, m, k, sums, Float64Array.from({ length: m }, (_, a) => norm(S, a * d, d)));
  else kern.pairSumsEuclidean(S, L, m, k, sums, null);
  let total = 0;
  for (let a = 0; a < m; a++) {
    const la = labels[rows[a]!]!;
    if (sizes[la]! <= 1) continue; // a singleton's silhouette is 0
    const intra = sums[a * k + la]! / (sizes[la]! - 1);
    let nearest = Infinity;
    for (let c = 0; c < k; c++) if (c !== la && sizes[c]! > 0) nearest = Math.min(nearest, sums[a * k + c]! / sizes[c]!);
    const denom = Math.max(intra, nearest);
    total += denom > 0 ? (nearest - intra) / denom : 0;
  }
  return { score: total / m, sampleSize: m };
}

/**
 * Every metric of a clustering. `centroids`, when given, must be the members' means (Lloyd's
 * centroids once no row changed cluster): then, for Euclidean models, both indices come from the
 * rows' distances to their centroid (dist2) instead of two more passes over the rows
 * (1M x 8: ~0.06 s).
 */
export function clusteringMetrics(s: Space, labels: Int32Array, dist2: Float64Array, k: number, seed: number, centroids?: Float64Array): ClusteringMetrics {
  const { n } = s;
  let msd = 0;
  for (let i = 0; i < n; i++) msd += dist2[i]!;
  const sil = silhouette(s, labels, k, seed);
  let davies_bouldin_index: number | null;
  let calinski_harabasz_score: number | null;
  if (centroids && s.distance === 'euclidean') {
    const counts = new Float64Array(k);
    const spread = new Float64Array(k);
    for (let i = 0; i < n; i++) {
      counts[labels[i]!]!++;
      spread[labels[i]!]! += Math.sqrt(dist2[i]!);
    }
    const members = { means: centroids, counts };
    davies_bouldin_index = daviesBouldinOf(s, members, spread);
    calinski_harabasz_score = calinskiHarabaszOf(s, members, msd);
  } else {
    const members = memberMeans(s, labels, k); // one pass for both indices
    davies_bouldin_index = daviesBouldin(s, labels, k, members);
    calinski_harabasz_score = calinskiHarabasz(s, labels, k, members);
  }
  return { davies_bouldin_index, mean_squared_distance: msd / n, silhouette_score: sil.score, silhouette_sample_size: sil.sampleSize, calinski_harabasz_score };
}
