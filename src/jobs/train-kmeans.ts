import { randomInt } from 'node:crypto';
import { planStreaming, refineByStreaming, STREAM_SAMPLE_ROWS } from './stream-kmeans.ts';
import { columnStatistics, IN_DATABASE_SAMPLE_ROWS, inDatabaseMode, refineInDatabase } from './kmeans-in-database.ts';
import { clusteringMetrics } from '../metrics/clustering.ts';
import { makeSpace } from '../models/kmeans/geometry.ts';
import { assign } from '../models/kmeans/lloyd.ts';
import { defaultNInit, kmeansSettings } from '../models/kmeans/options.ts';
import { stabilityScore } from '../models/kmeans/stability.ts';
import { matchCentroids } from '../models/kmeans/stable-ids.ts';
import { elbowIndex, optimalIndex, trialKs, type TuningObjective } from '../models/kmeans/sweep.ts';
import { trainSweep, type KmeansModel } from '../models/kmeans/train.ts';
import { UserError } from '../util/errors.ts';
import { outputTableName, prepareTrainingData, type ModelRow } from './training-data.ts';
import type { JobContext } from './context.ts';
import { runSweep } from './trial-jobs.ts';
import { artifactOf } from '../models/kmeans/artifact.ts';
import { fitProjection } from '../models/pca/projection.ts';
import { rebuild, renumber, shownCentroids } from '../models/kmeans/trials.ts';
import { previousCentroids, previousVersion } from '../store/previous.ts';
import { writeModel, type TrialWrite } from '../store/write-back.ts';
import { storeContext } from './context.ts';
import { centroidRows } from '../features/present.ts';
import { surrogateImportance } from '../models/surrogate.ts';


const DEFAULT_STABILITY_RUNS = 5;

export async function trainKmeansJob(ctx: JobContext, model: ModelRow): Promise<void> {
  const mode = await inDatabaseMode(ctx, model.options);
  const s = { ...kmeansSettings(model.options), inDatabase: mode !== null };
  const deadline = s.maxRuntimeSeconds === null ? undefined : Date.now() + s.maxRuntimeSeconds * 1000;

  const warm = s.warmStart ? await previousVersion(ctx.pool, model, true) : null;
  // a warm start continues the previous version's numbering of training runs
  const trainingRun = warm ? warm.artifact.training_run + 1 : 0;
  const output = outputTableName(model.options, ctx.apiSchema);
  const seed = s.seed ?? randomInt(0, 2 ** 31 - 1);
  const timeoutMs = deadline === undefined ? ctx.statementTimeoutMs : Math.min(ctx.statementTimeoutMs, deadline - Date.now());
  // Streaming mode: count the rows, then train on a uniform sample (the same one for a seed).
  // In-database mode: the same sample, then Lloyd steps as aggregates over every row.
  const plan = s.batchSize === null && !s.inDatabase ? null : await planStreaming(ctx, s.batchSize !== null ? Math.max(s.batchSize, STREAM_SAMPLE_ROWS) : IN_DATABASE_SAMPLE_ROWS, timeoutMs);
  const { data, spec, stats, X, n, d } = await prepareTrainingData(ctx, {
    exclude: s.exclude,
    standardize: s.standardize,
    categories: s.categories,
    deadline,
    maxRuntimeSeconds: s.maxRuntimeSeconds,
    boolColumn: s.initMethod === 'custom' ? s.initColumn : undefined,
    keep: output ? s.exclude : undefined,
    reuse: warm ? { spec: warm.spec, version: warm.version } : undefined,
    sample: plan?.where ? { where: plan.where, seed: (seed % 1_000_000) / 1_000_000, share: plan.share! } : undefined,
    rowMajor: true,
    // in the database, the standardization is every row's (one aggregate), as in memory
    columnStatistics: s.inDatabase
      ? (sample) => columnStatistics(ctx, sample, deadline === undefined ? ctx.statementTimeoutMs : Math.min(ctx.statementTimeoutMs, deadline - Date.now()))
      : undefined,
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
  const inDatabase = s.inDatabase
    ? await refineInDatabase(ctx, { spec, model: trained[0]!, statementTimeoutMs: timeoutMs, maxIterations: s.maxIterations, earlyStop: s.earlyStop, minRelProgress: s.minRelProgress, deadline })
    : null;
  const streamed = inDatabase ?? (plan && plan.where ? await refineByStreaming(ctx, { spec, exclude: s.exclude, batchSize: s.batchSize!, statementTimeoutMs: timeoutMs, model: trained[0]! }) : null);
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
    const prev = warm ?? (await previousVersion(ctx.pool, model, false));
    if (prev && prev.artifact.k === served.k) {
      const prevShown = await previousCentroids(ctx.pool, prev.modelId, spec);
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
      artifact: artifactOf(m, spec, trainingRun),
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
  servedTrial.artifact!.projection = await fitProjection(X, n, d);
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
      ...(inDatabase
        ? {
            training_mode: 'in_database', training_mode_reason: mode, rows: inDatabase.rows, batch_size: undefined, streamed_rows: undefined, stream_seconds: undefined,
            in_database_seconds: inDatabase.seconds, in_database_iterations: inDatabase.iterations.length, in_database_converged: inDatabase.converged,
            bytes_per_iteration: inDatabase.bytesPerIteration, initial_centroids: inDatabase.initialCentroids,
          }
        : {}),
    },
    options: resolvedOptions,
    trainingInfo: inDatabase ? inDatabase.iterations : served.iterations,
    trainingRun,
    featureStats: stats,
    output: output ? { table: output, kept: data.kept, labels: served.labels } : undefined,
    finalProgress: { phase: 'ready', iterations: served.iterations.length, loss: served.loss },
  });
}
