// What ml_detect_anomalies needs from training: each cluster's radius (RMS distance of its
// members to the centroid) and the distribution of the training rows' normalized distances
// (distance / radius of their cluster), as quantiles from the median up on a 0.1% grid.

import { sortedCopy } from '../../util/sort.ts';

export const QUANTILE_STEPS = 500; // p = 0.5, 0.501, ..., 1.0

export function anomalyProfile(labels: Int32Array, dist2: Float64Array, k: number): { radii: number[]; quantiles: number[] } {
  const n = labels.length;
  const sum = new Float64Array(k);
  const count = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    sum[labels[i]!]! += dist2[i]!;
    count[labels[i]!]!++;
  }
  const radii = Array.from({ length: k }, (_, c) => (count[c]! > 0 ? Math.sqrt(sum[c]! / count[c]!) : 0));
  const normalized = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = radii[labels[i]!]!;
    normalized[i] = r > 0 ? Math.sqrt(dist2[i]!) / r : 0;
  }
  const sorted = sortedCopy(normalized);
  const quantiles = Array.from({ length: QUANTILE_STEPS + 1 }, (_, s) => {
    const p = 0.5 + s / (2 * QUANTILE_STEPS);
    return sorted[Math.floor(p * (n - 1))]!;
  });
  return { radii, quantiles };
}
