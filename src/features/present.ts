import type { FeatureSpec, FeatureStats } from './prepare.ts';

// Model-space points (centroids, cluster means) shown in the units of the input columns, as
// ml_centroids returns them: numeric features de-standardized, categorical ones as shares.

export interface CentroidRow {
  centroid_id: number;
  ordinal: number;
  feature: string;
  numerical_value: number | null;
  standardized_value: number | null;
  categorical_value: { category: string | null; value: number }[] | null;
}

export function centroidRows(spec: FeatureSpec, C: Float64Array, k: number, stats: FeatureStats[]): CentroidRow[] {
  const d = spec.dims;
  const std = new Map(stats.map((s) => [s.input, s.stddev]));
  const rows: CentroidRow[] = [];
  for (let c = 0; c < k; c++) {
    spec.features.forEach((f, ordinal) => {
      if (f.kind === 'numeric') {
        const original = C[c * d + f.offset]! * f.scale + f.mean;
        const sd = std.get(f.name) || 1;
        rows.push({ centroid_id: c + 1, ordinal, feature: f.name, numerical_value: original, standardized_value: (original - f.mean) / sd, categorical_value: null });
      } else {
        const shares = f.categories.map((category, j) => ({ category, value: C[c * d + f.offset + j]! }));
        rows.push({ centroid_id: c + 1, ordinal, feature: f.name, numerical_value: null, standardized_value: null, categorical_value: shares });
      }
    });
  }
  return rows;
}
