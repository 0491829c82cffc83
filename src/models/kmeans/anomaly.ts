// What ml_detect_anomalies needs from training: each cluster's radius (RMS distance of its
// members to the centroid) and the distribution of the training rows' normalized distances
// (distance / radius of their cluster), as quantiles from the median up on a 0.1% grid.

import { sortedCopy } from '../../util/sort.ts';

export const QUANTILE_STEPS = 500; // p = 0.5, 0.501, ..., 1.0
const QUANTILE_SAMPLE = 200_000;

export function anomalyProfile(labels: Int32Array, dist2: Float64Array, k: number): { radii: number[]; quantiles: number[] } {
  const n = labels.length;
  const sum = new Float64Array(k);
  const count = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    sum[labels[i]!]! += dist2[i]!;
    count[labels[i]!]!++;
  }
  const radii = Array.from({ length: k }, (_, c) => (count[c]! > 0 ? Math.sqrt(sum[c]! / count[c]!) : 0));
  // Above QUANTILE_SAMPLE rows, every stride-th row: the 0.1% grid needs ~1,000 rows per step,
  // and sorting (and first touching) arrays of every row cost ~0.15 s on 1M rows.
  const stride = Math.max(1, Math.floor(n / QUANTILE_SAMPLE));
  const m = Math.ceil(n / stride);
  const normalized = new Float64Array(m);
  for (let i = 0, j = 0; i < n; i += stride, j++) {
    const r = radii[labels[i]!]!;
    normalized[j] = r > 0 ? Math.sqrt(dist2[i]!) / r : 0;
  }
  const sorted = sortedCopy(normalized);
  // Raised by 1e-9 (relative): ml_detect_anomalies recomputes distances in SQL, whose rounding
  // may put the farthest training row a last bit above the sidecar's value of it (contamination
  // 0 must flag no training row).
  const quantiles = Array.from({ length: QUANTILE_STEPS + 1 }, (_, s) => {
    const p = 0.5 + s / (2 * QUANTILE_STEPS);
    return sorted[Math.floor(p * (m - 1))]! * (1 + 1e-9);
  });
  return { radii, quantiles };
}
