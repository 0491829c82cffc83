import { randomInt } from 'node:crypto';
import { planStreaming, refineByStreaming } from './stream-kmeans.ts';
import type { FeatureSpec } from '../features/prepare.ts';
import { clusteringMetrics, memberMeans } from '../metrics/clustering.ts';
import { anomalyProfile } from '../models/kmeans/anomaly.ts';
import { makeSpace, pointDist2, type Space } from '../models/kmeans/geometry.ts';
import { assign } from '../models/kmeans/lloyd.ts';
import { defaultNInit, kmeansSettings } from '../models/kmeans/options.ts';
import { stabilityScore } from '../models/kmeans/stability.ts';
import { matchCentroids } from '../models/kmeans/stable-ids.ts';
import { elbowIndex, optimalIndex, trialKs, type TuningObjective } from '../models/kmeans/sweep.ts';
import { trainSweep, type KmeansModel } from '../models/kmeans/train.ts';
import { UserError } from '../util/errors.ts';
import { outputTableName, prepareTrainingData, type ModelRow } from './prepare.ts';
import type { JobContext } from './context.ts';
import { runSweep, type StoredTrial } from './sweep.ts';
import type { KmeansArtifact } from '../models/kmeans/artifact.ts';
import { writeModel, type TrialWrite } from '../store/write-back.ts';
import { storeContext } from './context.ts';
import { centroidRows } from '../features/present.ts';
import { surrogateImportance } from '../models/surrogate.ts';


const DEFAULT_STABILITY_RUNS = 5;

export async function trainKmeansJob(ctx: JobContext, model: ModelRow): Promise<void> {
  const s = kmeansSettings(model.options);
  const deadline = s.maxRuntimeSeconds === null ? undefined : Date.now() + s.maxRuntimeSeconds * 1000;

  const warm = s.warmStart ? await previousVersion(ctx, model, true) : null;
  const output = outputTableName(model.options, ctx.apiSchema);
  const seed = s.seed ?? randomInt(0, 2 ** 31 - 1);
  const timeoutMs = deadline === undefined ? ctx.statementTimeoutMs : Math.min(ctx.statementTimeoutMs, deadline - Date.now());
  // Streaming mode: count the rows, then train on a uniform sample (the same one for a seed).
  const plan = s.batchSize === null ? null : await planStreaming(ctx, s.batchSize, timeoutMs);
  const { data, spec, stats, X, n, d } = await prepareTrainingData(ctx, {
    exclude: s.exclude,
    standardize: s.standardize,
    maxCategories: s.maxCategories,
    deadline,
    maxRuntimeSeconds: s.maxRuntimeSeconds,
    boolColumn: s.initMethod === 'custom' ? s.initColumn : undefined,
    keep: output ? s.exclude : undefined,
    reuse: warm ? { spec: warm.spec, version: warm.version } : undefined,
    sample: plan?.where ? { where: plan.where, seed: (seed % 1_000_000) / 1_000_000, share: plan.share! } : undefined,
    rowMajor: true,
  });
  let ks: number[];
  let sweep = false;
  if (warm) {
    ks = [warm.artifact.k];
    if (typeof model.options.num_clusters === 'number' && model.options.num_clusters !== warm.artifact.k) {
      throw new UserError(`"warm_start" keeps num_clusters of version ${warm.version} (${warm.artifact.k}); remove "num_clusters" or set it to ${warm.artifact.k}`);
    }
  } else ({ ks, sweep } = trialKs(model.options.num_clusters, plan?.totalRows ?? n));
  const nInit = s.nInit ?? defaultNInit(n, Math.max(...ks));

  const common = {
    distance: s.distance,
    maxIterations: s.maxIterations,
    earlyStop: s.earlyStop,
    minRelProgress: s.minRelProgress,
    seed,
    nInit,
    deadline,
  };
  const started = performance.now();
  let trained: KmeansModel[];
  let failed: { trialId: number; k: number; error: string }[] = [];
  if (sweep) {
    // One job per k, so that every sidecar serving the queue can take a trial.
    const outcomes = await runSweep(ctx, model.id, { X, n, d, spec }, ks, { ...common, initMethod: s.initMethod === 'random' ? 'random' : 'kmeans++' });
    failed = outcomes.flatMap((o) => ('error' in o ? [o] : []));
    const space = makeSpace(X, n, d, s.distance);
    trained = outcomes.flatMap((o) => ('stored' in o ? [rebuild(space, o.stored)] : []));
    if (trained.length === 0) throw new UserError(`every trial of the sweep failed: ${failed.map((f) => `k=${f.k}: ${f.error}`).join('; ')}`);
    ks = trained.map((m) => m.k);
  } else {
    trained = await trainSweep(
      X,
      n,
      d,
      ks,
      {
        ...common,
        initMethod: warm ? 'warm' : s.initMethod,
        initFlags: data.flags,
        initColumn: s.initColumn,
        warmCentroids: warm ? Float64Array.from(warm.artifact.centroids.flat()) : undefined,
      },
      (trial, run, info) =>
        ctx.checkpoint({ phase: 'train', trial: trial + 1, k: ks[trial], run: run + 1, of: nInit, iteration: info.iteration, loss: info.loss }),
    );
  }
  // Streaming: the sample's model moves by mini-batches over every row and is measured on them;
  // the sample's labels then follow the final centroids (anomaly radii, profiles, surrogate).
  const streamed = plan && plan.where ? await refineByStreaming(ctx, { spec, exclude: s.exclude, batchSize: s.batchSize!, statementTimeoutMs: timeoutMs, model: trained[0]! }) : null;
  if (streamed) {
    const m = trained[0]!;
    assign(m.space, m.centroids, m.k, m.labels, m.dist2);
    m.loss = streamed.mean_squared_distance;
  }
  const trainSeconds = (performance.now() - started) / 1000;
  await ctx.checkpoint({ phase: 'evaluate' });

  const scores = trained.map((m) => {
    // Converged Lloyd: the centroids are the members' means (not after streaming moved them).
    const sampled = clusteringMetrics(m.space, m.labels, m.dist2, m.k, seed, m.converged && !streamed ? m.centroids : undefined);
    // Streaming: the objective, Davies-Bouldin and Calinski-Harabasz are over every row;
    // silhouette (pairs of rows) stays on the sample.
    if (streamed) {
      const { mean_squared_distance, davies_bouldin_index, calinski_harabasz_score } = streamed;
      return { k: m.k, ...sampled, mean_squared_distance, davies_bouldin_index, calinski_harabasz_score };
    }
    return { k: m.k, ...sampled };
  });
  const objective = (model.options.hparam_tuning_objective as TuningObjective | undefined) ?? 'davies_bouldin_index';
  const optimal = optimalIndex(scores, objective);
  const elbow = sweep ? elbowIndex(scores) : null;

  // Stable ids: the served trial continues the previous version's segment numbering.
  const served = trained[optimal]!;
  let renumbered = false;
  if (model.options.stable_ids !== false) {
    const prev = warm ?? (await previousVersion(ctx, model, false));
    if (prev && prev.artifact.k === served.k) {
      const prevShown = await previousCentroids(ctx, prev.modelId, spec);
      if (prevShown) {
        renumber(served, matchCentroids(shownCentroids(served, X, n, d), prevShown, served.k, d));
        renumbered = true;
      }
    }
  }
  await ctx.checkpoint({ phase: 'stability' });
  const stability = await stabilityScore(X, n, d, served.labels, served.k, {
    distance: s.distance,
    seed,
    runs: typeof model.options.stability_runs === 'number' ? model.options.stability_runs : DEFAULT_STABILITY_RUNS,
    initMethod: s.initMethod === 'random' ? 'random' : 'kmeans++',
  });

  const trialIds = sweep ? ks.map((k) => 1 + (trialKs(model.options.num_clusters, n).ks.indexOf(k))) : [1];
  const trials: TrialWrite[] = trained.map((m, i) => {
    const metrics = { ...scores[i]!, k: undefined, num_clusters: m.k, noise_fraction: 0, stability: i === optimal ? stability : null, iterations: m.iterations.length, converged: m.converged };
    return {
      trialId: trialIds[i]!,
      hyperparameters: { num_clusters: m.k },
      metrics,
      artifact: artifactOf(m, spec, warm ? warm.artifact.training_run + 1 : 0),
      centroidRows: centroidRows(spec, shownCentroids(m, X, n, d), m.k, stats),
      isOptimal: i === optimal,
      isElbow: sweep ? i === elbow : null,
    };
  });
  for (const f of failed) {
    trials.push({ trialId: f.trialId, hyperparameters: { num_clusters: f.k }, metrics: {}, error: f.error, isOptimal: false, isElbow: null });
  }
  trials.sort((a, b) => a.trialId - b.trialId);
  const servedTrial = trials.find((t) => t.isOptimal)!;
  await ctx.checkpoint({ phase: 'explain' });
  const surrogate = await surrogateImportance(X, n, spec, served.labels, seed);
  servedTrial.artifact!.importance = surrogate.importance;
  const resolvedOptions = {
    ...model.options,
    num_clusters: model.options.num_clusters ?? served.k,
    seed,
    n_init: nInit,
    kmeans_init_method: warm ? 'warm_start' : s.initMethod,
    distance_type: s.distance,
    standardize_features: s.standardize,
    max_iterations: s.maxIterations,
    early_stop: s.earlyStop,
    min_rel_progress: s.minRelProgress,
  };
  await ctx.checkpoint({ phase: 'write' });
  await writeModel(storeContext(ctx), {
    modelId: model.id,
    modelName: model.model_name,
    version: model.version,
    owner: model.owner,
    functionName: model.function_name,
    spec,
    trials,
    metrics: {
      ...servedTrial.metrics,
      num_clusters: served.k,
      trials: trials.length,
      rows: n,
      winning_run: served.run + 1,
      stable_ids_applied: renumbered,
      surrogate_fidelity: surrogate.fidelity,
      stopped_by_max_runtime: trained.some((m) => m.timedOut) || undefined,
      load_seconds: data.seconds,
      train_seconds: trainSeconds,
      ...(plan
        ? { rows: plan.totalRows, sample_rows: n, batch_size: s.batchSize, streamed_rows: streamed?.rows ?? 0, stream_seconds: streamed?.seconds ?? 0, cluster_sizes: streamed?.cluster_sizes }
        : {}),
    },
    options: resolvedOptions,
    trainingInfo: served.iterations,
    trainingRun: servedTrial.artifact!.training_run,
    featureStats: stats,
    output: output ? { table: output, kept: data.kept, labels: served.labels } : undefined,
    finalProgress: { phase: 'ready', iterations: served.iterations.length, loss: served.loss },
  });
}

/** A trial trained elsewhere: its centroids, and labels recomputed here (the same assignment). */
function rebuild(space: Space, t: StoredTrial): KmeansModel {
  const C = Float64Array.from(t.centroids.flat());
  const labels = new Int32Array(space.n);
  const dist2 = new Float64Array(space.n);
  assign(space, C, t.k, labels, dist2);
  let loss = 0;
  for (let i = 0; i < space.n; i++) loss += dist2[i]!;
  return { centroids: C, labels, dist2, loss: loss / space.n, iterations: t.iterations, converged: t.converged, timedOut: t.timed_out, k: t.k, space, run: t.run };
}

function artifactOf(m: KmeansModel, spec: FeatureSpec, trainingRun: number): KmeansArtifact {
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

/**
 * What ml_centroids shows, in model space: the centroid, or for cosine models (whose centroids
 * live on unit-length rows) the mean of the members' un-normalised features.
 */
function shownCentroids(m: KmeansModel, X: Float64Array, n: number, d: number): Float64Array {
  return m.space.distance === 'euclidean' ? m.centroids : memberMeans(makeSpace(X, n, d, 'euclidean'), m.labels, m.k).means;
}

/** Applies a renumbering in place: order[i] is the new position (0-based) of centroid i. */
function renumber(m: KmeansModel, order: number[]): void {
  const { k } = m;
  const d = m.space.d;
  const C = Float64Array.from(m.centroids);
  for (let c = 0; c < k; c++) m.centroids.set(C.subarray(c * d, c * d + d), order[c]! * d);
  for (let i = 0; i < m.labels.length; i++) m.labels[i] = order[m.labels[i]!]!;
  for (const it of m.iterations) {
    it.clusterInfo = it.clusterInfo
      .map((ci) => ({ ...ci, centroid_id: order[ci.centroid_id - 1]! + 1 }))
      .sort((a, b) => a.centroid_id - b.centroid_id);
  }
}


interface PreviousVersion {
  modelId: string;
  version: number;
  spec: FeatureSpec;
  artifact: KmeansArtifact;
}

async function previousVersion(ctx: JobContext, model: ModelRow, required: boolean): Promise<PreviousVersion | null> {
  const { rows } = await ctx.pool.query<{ id: string; version: number; artifact: KmeansArtifact }>(
    `SELECT m.id::text, m.version, m.artifact FROM ml.models m JOIN ml.jobs j ON j.id = m.job_id
      WHERE m.model_name = $1 AND m.version < $2 AND j.status = 'ready' AND m.model_type = 'kmeans'
      ORDER BY m.version DESC LIMIT 1`,
    [model.model_name, model.version],
  );
  const prev = rows[0];
  if (!prev) {
    if (required) throw new UserError(`"warm_start" needs a ready earlier version of model "${model.model_name}"; train one without warm_start first`);
    return null;
  }
  const a = prev.artifact;
  return { modelId: prev.id, version: prev.version, spec: { features: a.features, dims: a.dims, standardize: a.standardize }, artifact: a };
}

/** The previous version's served centroids (as ml_centroids shows them), mapped into `spec`'s space. */
async function previousCentroids(ctx: JobContext, modelId: string, spec: FeatureSpec): Promise<Float64Array | null> {
  const { rows } = await ctx.pool.query<{ centroid_id: number; feature: string; numerical_value: number | null; categorical_value: { category: string | null; value: number }[] | null }>(
    `SELECT c.centroid_id, c.feature, c.numerical_value, c.categorical_value
       FROM ml.centroids c JOIN ml.trials t ON t.model_id = c.model_id AND t.trial_id = c.trial_id AND t.is_optimal
      WHERE c.model_id = $1`,
    [modelId],
  );
  if (rows.length === 0) return null;
  const k = Math.max(...rows.map((r) => r.centroid_id));
  const d = spec.dims;
  const P = new Float64Array(k * d);
  const byName = new Map(spec.features.map((f) => [f.name, f]));
  for (const r of rows) {
    const f = byName.get(r.feature);
    if (!f) continue;
    const base = (r.centroid_id - 1) * d + f.offset;
    if (f.kind === 'numeric' && r.numerical_value !== null) P[base] = (r.numerical_value - f.mean) / f.scale;
    else if (f.kind === 'categorical' && r.categorical_value) {
      for (const { category, value } of r.categorical_value) {
        const j = f.categories.indexOf(category);
        if (j >= 0) P[base + j] = value;
      }
    }
  }
  return P;
}
