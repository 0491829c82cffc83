import type { Feature } from '../../features/prepare.ts';
import type { ImportanceRow } from '../surrogate.ts';
import type { DistanceType } from './geometry.ts';

/**
 * What scoring replays: stored in ml.models.artifact. For k-means, `centroids` are the
 * centroids; for density models they are exemplars, `groups` lists each cluster's exemplars,
 * and a row farther than `reach` from its cluster's nearest exemplar is noise.
 */
export interface KmeansArtifact {
  k: number; // clusters
  groups?: number[][];
  reach?: number[];
  probability_scale?: number[];
  outlier_scale?: number[];
  distance: DistanceType;
  standardize: boolean;
  dims: number;
  features: Feature[];
  centroids: number[][]; // model space
  centroid_distances: number[][]; // between model centroids, in the model's metric
  radii: number[]; // RMS distance of each cluster's training members (anomaly detection)
  anomaly_quantiles: number[]; // training rows' normalized distances, p = 0.5 .. 1 by 0.001
  training_run: number;
  /** Which input columns decide the segment: a surrogate tree's gains (ml_feature_importance). */
  importance?: ImportanceRow[];
}
