import { randomInt } from 'node:crypto';
import { loadTrainingData } from '../data/load.ts';
import { fitFeatures, transform, type FeatureSpec, type FeatureStats } from '../features/prepare.ts';
import { clusteringMetrics, memberMeans } from '../metrics/clustering.ts';
import { makeSpace, pointDist2 } from '../models/kmeans/geometry.ts';
import { defaultNInit, defaultNumClusters, kmeansSettings } from '../models/kmeans/options.ts';
import { trainKmeans } from '../models/kmeans/train.ts';
import { UserError } from '../util/errors.ts';
import type { JobContext } from './run.ts';
import { writeKmeansModel, type CentroidRow, type KmeansArtifact } from './write-back.ts';

interface ModelRow {
  id: string;
  model_name: string;
  version: number;
  model_type: string;
  options: Record<string, unknown>;
  owner: string;
  function_name: string;
}

export async function runTrainJob(ctx: JobContext): Promise<void> {
  const { pool, job } = ctx;
  const { rows } = await pool.query<ModelRow>(
    `SELECT id::text, model_name, version, model_type, options, owner::text, function_name FROM ml.models WHERE id = $1`,
    [job.model_id],
  );
  const model = rows[0];
  if (!model) throw new UserError('the model of this job was dropped');
  if (model.model_type !== 'kmeans') throw new UserError(`unknown model_type "${model.model_type}"`);
  const s = kmeansSettings(model.options);
  const t0 = performance.now();
  const deadline = s.maxRuntimeSeconds === null ? undefined : t0 + s.maxRuntimeSeconds * 1000;

  const warm = s.warmStart ? await previousArtifact(ctx, model) : null;
  const data = await loadTrainingData(pool, {
    query: job.training_query,
    role: job.requested_by,
    statementTimeoutMs: deadline === undefined ? ctx.statementTimeoutMs : Math.min(ctx.statementTimeoutMs, deadline - performance.now()),
    maxBytes: ctx.maxBytes,
    exclude: s.exclude,
    boolColumn: s.initMethod === 'custom' ? s.initColumn : undefined,
  });
  const n = data.table.rows;
  if (n === 0) throw new UserError('the training query returned no rows');
  if (deadline !== undefined && performance.now() > deadline) {
    throw new UserError(`"max_runtime" (${s.maxRuntimeSeconds} s) was reached while reading the training data, before anything was trained; raise "max_runtime"`);
  }
  await ctx.checkpoint({ phase: 'prepare', rows: n });

  let spec: FeatureSpec;
  let stats: FeatureStats[];
  if (warm) {
    const fitted = fitFeatures(data.table, { standardize: s.standardize, maxCategories: Infinity });
    stats = fitted.stats;
    const names = (x: FeatureSpec) => x.features.map((f) => `${f.name}:${f.kind}`).join(', ');
    if (names(fitted.spec) !== names(warm.spec)) {
      throw new UserError(
        `"warm_start" needs the same feature columns as version ${warm.version} (${names(warm.spec)}); the query gives ${names(fitted.spec)}`,
      );
    }
    spec = warm.spec;
  } else {
    ({ spec, stats } = fitFeatures(data.table, { standardize: s.standardize, maxCategories: s.maxCategories }));
  }
  const X = transform(data.table, spec);
  const d = spec.dims;
  const k = warm ? warm.artifact.k : (s.numClusters ?? defaultNumClusters(n));
  if (warm && s.numClusters !== null && s.numClusters !== k) {
    throw new UserError(`"warm_start" keeps num_clusters of version ${warm.version} (${k}); remove "num_clusters" or set it to ${k}`);
  }
  const seed = s.seed ?? randomInt(0, 2 ** 31 - 1);
  const nInit = s.nInit ?? defaultNInit(n, k);

  const started = performance.now();
  const model_ = await trainKmeans(
    X,
    n,
    d,
    {
      numClusters: k,
      initMethod: warm ? 'warm' : s.initMethod,
      distance: s.distance,
      maxIterations: s.maxIterations,
      earlyStop: s.earlyStop,
      minRelProgress: s.minRelProgress,
      seed,
      nInit,
      initFlags: data.flags,
      initColumn: s.initColumn,
      warmCentroids: warm ? Float64Array.from(warm.artifact.centroids.flat()) : undefined,
      deadline,
    },
    (run, info) => ctx.checkpoint({ phase: 'train', run: run + 1, of: nInit, iteration: info.iteration, loss: info.loss }),
  );
  const trainSeconds = (performance.now() - started) / 1000;
  await ctx.checkpoint({ phase: 'evaluate' });

  const metrics = clusteringMetrics(model_.space, model_.labels, model_.dist2, k, seed);
  const C = model_.centroids;
  // What ml_centroids shows: the centroid in model space, or for cosine models (whose
  // centroids live on unit-length rows) the mean of the members' un-normalised features.
  const shown = s.distance === 'euclidean' ? C : memberMeans(makeSpace(X, n, d, 'euclidean'), model_.labels, k).means;
  const centroidDistances = Array.from({ length: k }, (_, a) =>
    Array.from({ length: k }, (_, b) => Math.sqrt(pointDist2(s.distance, C, a * d, C, b * d, d))),
  );
  const artifact: KmeansArtifact = {
    k,
    distance: s.distance,
    standardize: spec.standardize,
    dims: d,
    features: spec.features,
    centroids: Array.from({ length: k }, (_, c) => Array.from(C.subarray(c * d, c * d + d))),
    centroid_distances: centroidDistances,
    training_run: warm ? warm.artifact.training_run + 1 : 0,
  };
  const resolvedOptions = {
    ...model.options,
    num_clusters: k,
    seed,
    n_init: nInit,
    kmeans_init_method: warm ? 'warm_start' : s.initMethod,
    distance_type: s.distance,
    standardize_features: s.standardize,
    max_iterations: s.maxIterations,
    early_stop: s.earlyStop,
    min_rel_progress: s.minRelProgress,
  };
  await writeKmeansModel(ctx, {
    modelId: model.id,
    modelName: model.model_name,
    version: model.version,
    owner: model.owner,
    functionName: model.function_name,
    spec,
    artifact,
    centroidRows: centroidRows(spec, shown, k, stats),
    metrics: {
      ...metrics,
      rows: n,
      iterations: model_.iterations.length,
      converged: model_.converged,
      stopped_by_max_runtime: model_.timedOut || undefined,
      winning_run: model_.run + 1,
      load_seconds: data.seconds,
      train_seconds: trainSeconds,
    },
    options: resolvedOptions,
    trainingInfo: model_.iterations,
    featureStats: stats,
    finalProgress: { phase: 'ready', iterations: model_.iterations.length, loss: model_.loss },
  });
}

function centroidRows(spec: FeatureSpec, C: Float64Array, k: number, stats: FeatureStats[]): CentroidRow[] {
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

async function previousArtifact(ctx: JobContext, model: ModelRow): Promise<{ version: number; spec: FeatureSpec; artifact: KmeansArtifact } | null> {
  const { rows } = await ctx.pool.query<{ version: number; artifact: KmeansArtifact }>(
    `SELECT m.version, m.artifact FROM ml.models m JOIN ml.jobs j ON j.id = m.job_id
      WHERE m.model_name = $1 AND m.version < $2 AND j.status = 'ready' AND m.model_type = 'kmeans'
      ORDER BY m.version DESC LIMIT 1`,
    [model.model_name, model.version],
  );
  const prev = rows[0];
  if (!prev) throw new UserError(`"warm_start" needs a ready earlier version of model "${model.model_name}"; train one without warm_start first`);
  const a = prev.artifact;
  return { version: prev.version, spec: { features: a.features, dims: a.dims, standardize: a.standardize }, artifact: a };
}
