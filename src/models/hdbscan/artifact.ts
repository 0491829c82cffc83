import type { Feature } from '../../features/prepare.ts';
import type { DistanceType } from '../kmeans/geometry.ts';
import type { Projection2D } from '../pca/projection.ts';
import type { ImportanceRow } from '../surrogate.ts';

/**
 * What scoring a density model replays (ml.models.artifact): a row belongs to the cluster of its
 * nearest exemplar when it lies within that cluster's reach, and is noise (-1) otherwise.
 */
export interface DensityArtifact {
  k: number; // clusters
  distance: DistanceType;
  standardize: boolean;
  dims: number;
  features: Feature[];
  centroids: number[][]; // the exemplars, model space (the name scoring reads)
  groups: number[][]; // per cluster, its exemplars' positions in `centroids`
  reach: number[]; // per cluster: farther from its nearest exemplar is noise
  probability_scale: number[]; // membership probability = min(1, scale / distance)
  outlier_scale: number[]; // outlier score = 1 - min(1, scale / distance)
  /** Which input columns decide the segment: a surrogate tree's gains (ml_feature_importance). */
  importance?: ImportanceRow[];
  /** The 2-D view of the model space (ml_project, the report's scatter) and its function. */
  projection?: Projection2D & { function?: string };
}

/** Exemplar indices per cluster, renumbered to positions in the flattened exemplar list. */
export function regroup(exemplars: number[][]): number[][] {
  let next = 0;
  return exemplars.map((g) => g.map(() => next++));
}
