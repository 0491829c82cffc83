import { randomInt } from 'node:crypto';
import { centroidRows } from '../features/present.ts';
import { categoryOptions } from '../features/prepare.ts';
import { memberMeans } from '../metrics/clustering.ts';
import { clusterMembers } from '../metrics/density.ts';
import type { DistanceType } from '../models/kmeans/geometry.ts';
import { trainHdbscanOffThread } from '../models/hdbscan/off-thread.ts';
import { defaultMinClusterSize } from '../models/hdbscan/train.ts';
import { outputTableName, prepareTrainingData, type ModelRow } from './training-data.ts';
import type { JobContext } from './context.ts';
import { regroup, type DensityArtifact } from '../models/hdbscan/artifact.ts';
import { fitProjection } from '../models/pca/projection.ts';
import { writeModel } from '../store/write-back.ts';
import { storeContext } from './context.ts';
import { surrogateImportance } from '../models/surrogate.ts';

// Density clustering (HDBSCAN*) as a training job: same loading, preparation and write-back
// as k-means; the served "centroids" are exemplars (see src/models/hdbscan/train.ts).

export async function trainHdbscanJob(ctx: JobContext, model: ModelRow): Promise<void> {
  const o = model.options;
  const exclude = Array.isArray(o.exclude) ? (o.exclude as string[]) : [];
  const distance = (o.distance_type as DistanceType | undefined) ?? 'euclidean';
  const output = outputTableName(o, ctx.apiSchema);
  const { data, spec, stats, X, n, d } = await prepareTrainingData(ctx, {
    exclude,
    standardize: o.standardize_features !== false,
    categories: categoryOptions(o),
    keep: output ? exclude : undefined,
  });
  const minClusterSize = typeof o.min_cluster_size === 'number' ? o.min_cluster_size : defaultMinClusterSize(n);
  const minSamples = typeof o.min_samples === 'number' ? o.min_samples : minClusterSize;
  const seed = typeof o.seed === 'number' ? o.seed : randomInt(0, 2 ** 31 - 1);
  const started = performance.now();
  const m = await trainHdbscanOffThread(X, n, d, {
    minClusterSize,
    minSamples,
    method: (o.cluster_selection_method as 'eom' | 'leaf' | undefined) ?? 'eom',
    epsilon: typeof o.cluster_selection_epsilon === 'number' ? o.cluster_selection_epsilon : 0,
    distance,
    checkpoint: (phase) => ctx.checkpoint({ phase }),
  }, seed);
  const trainSeconds = (performance.now() - started) / 1000; // the fit and its metrics
  const metrics = m.metrics;
  // ml_centroids of a density model: the mean of each cluster's members.
  const members = clusterMembers(X, n, d, m.labels);
  const means = memberMeans(members.space, members.labels, m.k).means;
  const artifact: DensityArtifact = {
    k: m.k,
    distance,
    standardize: spec.standardize,
    dims: d,
    features: spec.features,
    centroids: m.exemplars.flat().map((i) => Array.from(X.subarray(i * d, i * d + d))),
    groups: regroup(m.exemplars),
    reach: m.reach,
    probability_scale: m.probabilityScale,
    outlier_scale: m.outlierScale,
  };
  await ctx.checkpoint({ phase: 'explain' });
  const surrogate = await surrogateImportance(X, n, spec, m.labels, seed);
  artifact.importance = surrogate.importance;
  artifact.projection = await fitProjection(X, n, d);
  await writeModel(storeContext(ctx), {
    modelId: model.id,
    modelName: model.model_name,
    version: model.version,
    owner: model.owner,
    functionName: model.function_name,
    spec,
    trials: [
      {
        trialId: 1,
        hyperparameters: { min_cluster_size: minClusterSize, min_samples: minSamples },
        metrics,
        artifact,
        centroidRows: centroidRows(spec, means, m.k, stats),
        isOptimal: true,
        isElbow: null,
      },
    ],
    metrics: { ...metrics, rows: n, load_seconds: data.seconds, train_seconds: trainSeconds, surrogate_fidelity: surrogate.fidelity },
    options: { ...o, min_cluster_size: minClusterSize, min_samples: minSamples, seed, distance_type: distance },
    trainingInfo: [],
    trainingRun: 0,
    featureStats: stats,
    output: output
      ? { table: output, kept: data.kept, labels: m.labels, probabilities: m.probabilities, outlierScores: m.outlierScores }
      : undefined,
    finalProgress: { phase: 'ready', clusters: m.k },
  });
}



