import type { Feature, FeatureSpec } from '../../features/prepare.ts';
import type { Projection2D } from '../pca/projection.ts';
import type { ImportanceRow } from '../surrogate.ts';
import { anomalyProfile } from './anomaly.ts';
import { pointDist2, type DistanceType } from './geometry.ts';
import type { IterationInfo } from './lloyd.ts';
import type { KmeansModel } from './train.ts';

/** What scoring a k-means model replays (ml.models.artifact, ml.trials.artifact). */
export interface KmeansArtifact {
  k: number; // clusters
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
  /** The segment as one built-in SQL expression over the columns (ml_scoring_expression; shippable to shards). */
  scoring_expression?: string;
  /** The served trial's 2-D view of the model space (ml_project, the report's scatter) and its function. */
  projection?: Projection2D & { function?: string };
}

/** What a trial job stores in ml.trials.artifact until the sweep finishes. */
export interface StoredTrial {
  k: number;
  centroids: number[][];
  iterations: IterationInfo[];
  converged: boolean;
  timed_out: boolean;
  run: number;
}

/** The artifact of a trained k-means model: what scoring replays. */
export function artifactOf(m: KmeansModel, spec: FeatureSpec, trainingRun: number): KmeansArtifact {
  const { k, centroids: C } = m;
  const d = spec.dims;
  const { radii, quantiles } = anomalyProfile(m.labels, m.dist2, k);
  return {
    k,
    distance: m.space.distance,
    standardize: spec.standardize,
    dims: d,
    features: spec.features,
    centroids: Array.from({ length: k }, (_, c) => Array.from(C.subarray(c * d, c * d + d))),
    centroid_distances: Array.from({ length: k }, (_, a) =>
      Array.from({ length: k }, (_, b) => Math.sqrt(pointDist2(m.space.distance, C, a * d, C, b * d, d))),
    ),
    radii,
    anomaly_quantiles: quantiles,
    training_run: trainingRun,
  };
}
