import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { KeptColumn } from '../data/load.ts';
import { quoteIdent, quoteLiteral, withTransaction } from '../db/connect.ts';
import type { Feature, FeatureSpec, FeatureStats } from '../features/prepare.ts';
import type { CentroidRow } from '../features/present.ts';
import type { DistanceType } from '../models/kmeans/geometry.ts';
import type { IterationInfo } from '../models/kmeans/lloyd.ts';
import { argumentTypes, distancesFunctionSql, nearestFunctionSql, predictFunctionSql } from '../models/kmeans/to-sql.ts';
import { COMPLETE, LOCK_OWN_JOB } from '../queue/job-sql.ts';
import { LeaseLost } from '../util/errors.ts';
import type { JobContext } from './run.ts';
import type { ImportanceRow } from '../models/surrogate.ts';

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

/** One trial (one k of a sweep; a plain model has one). A failed trial has `error` only. */
export type TrialWrite = {
  trialId: number;
  hyperparameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
  isOptimal: boolean;
  isElbow: boolean | null;
} & ({ artifact: KmeansArtifact; centroidRows: CentroidRow[]; error?: undefined } | { error: string; artifact?: undefined; centroidRows?: undefined });


export interface ModelWrite {
  modelId: string;
  modelName: string;
  version: number;
  owner: string;
  functionName: string;
  spec: FeatureSpec;
  trials: TrialWrite[];
  metrics: Record<string, unknown>;
  options: Record<string, unknown>;
  trainingInfo: IterationInfo[]; // of the optimal trial
  trainingRun: number;
  featureStats: FeatureStats[];
  output?: OutputTable;
  finalProgress: Record<string, unknown>;
}

/** output_table: the training rows' kept (excluded) columns next to their labels. */
export interface OutputTable {
  table: [string, string];
  kept: KeptColumn[];
  labels: Int32Array; // 0-based cluster, -1 = noise
  probabilities?: Float64Array;
  outlierScores?: Float64Array;
}

/**
 * Writes a trained model in one transaction: model row, centroids, training and feature info,
 * the generated scoring functions, and the job's `ready`. Readers see the whole model or none
 * of it. If the job's lease was lost meanwhile (another sidecar took over), nothing is written.
 */
export async function writeModel(ctx: JobContext, w: ModelWrite): Promise<void> {
  await withTransaction(ctx.pool, async (client) => {
    const roles = await openWriteBack(client, ctx, w.modelId, w.modelName, w.owner);
    await client.query('DELETE FROM ml.centroids WHERE model_id = $1', [w.modelId]);
    let servedDistances = '';
    let signature: string | null = null;
    for (const t of w.trials) {
      if (t.error !== undefined) {
        await client.query(
          `INSERT INTO ml.trials (model_id, trial_id, hyperparameters, status, error_message) VALUES ($1, $2, $3, 'failed', $4)`,
          [w.modelId, t.trialId, JSON.stringify(t.hyperparameters), t.error],
        );
        continue;
      }
      // The optimal trial's function keeps the short name the model row points at.
      const distances = `ml.${quoteIdent(t.isOptimal ? `m${w.modelId}_distances` : `m${w.modelId}_t${t.trialId}_distances`)}`;
      const compiled = {
        spec: w.spec,
        centroids: Float64Array.from(t.artifact.centroids.flat()),
        k: t.artifact.centroids.length,
        distance: t.artifact.distance,
        groups: t.artifact.groups,
        reach: t.artifact.reach,
      };
      await client.query(distancesFunctionSql(compiled, distances));
      await restrictExecute(client, `${distances}(${argumentTypes(w.spec)})`, roles);
      // k-means: the ranked nearest centroids for ml_predict, recorded as the trial's explain_function.
      let nearest: string | null = null;
      if (!compiled.groups) {
        nearest = `ml.${quoteIdent(t.isOptimal ? `m${w.modelId}_nearest` : `m${w.modelId}_t${t.trialId}_nearest`)}`;
        await client.query(nearestFunctionSql(compiled, nearest));
        await restrictExecute(client, `${nearest}(${argumentTypes(w.spec)})`, roles);
      }
      await client.query(
        `INSERT INTO ml.trials (model_id, trial_id, hyperparameters, metrics, status, is_optimal, is_elbow, artifact, distances_function, explain_function)
         VALUES ($1, $2, $3, $4, 'succeeded', $5, $6, $7, $8, $9)`,
        [w.modelId, t.trialId, JSON.stringify(t.hyperparameters), JSON.stringify(t.metrics), t.isOptimal, t.isElbow, JSON.stringify(t.artifact), distances, nearest],
      );
      await insertCentroids(client, w.modelId, t.trialId, t.centroidRows);
      if (t.isOptimal) {
        servedDistances = distances;
        signature = await publishPredictFunction(client, ctx.apiSchema, w, compiled, roles);
        await client.query(
          `UPDATE ml.models SET artifact = $2, metrics = $3, options = $4, trained_at = now(),
                  distances_function = $5, function_signature = coalesce($6, function_signature)
            WHERE id = $1`,
          [w.modelId, JSON.stringify(t.artifact), JSON.stringify(w.metrics), JSON.stringify(w.options), servedDistances, signature],
        );
      }
    }
    await insertTrainingInfo(client, w.modelId, w.trainingRun, w.trainingInfo.map((i) => ({ ...i, evalLoss: null, learnRate: null })));
    await insertFeatureInfo(client, w.modelId, w.featureStats);
    if (w.output) await writeOutputTable(client, ctx.job.requested_by, w.output);
    await client.query(COMPLETE, [ctx.job.id, ctx.workerId, JSON.stringify(w.finalProgress)]);
  });
}

/**
 * Starts a write-back inside its transaction: signatures print schema-qualified, the job must
 * still be ours (else nothing is written: another sidecar took it over), write-backs of one
 * model's versions serialize (they share the public function), and what an earlier attempt
 * wrote is cleared. Returns the roles that may execute the generated functions.
 */
export async function openWriteBack(client: PoolClient, ctx: JobContext, modelId: string, modelName: string, owner: string): Promise<string[]> {
  await client.query('SET LOCAL search_path TO pg_catalog');
  const own = await client.query(LOCK_OWN_JOB, [ctx.job.id, ctx.workerId]);
  if (own.rowCount === 0) throw new LeaseLost(ctx.job.id);
  await client.query(`SELECT pg_advisory_xact_lock(hashtext('sqlml.model:' || $1))`, [modelName]);
  const readers = await client.query<{ grantee: string }>('SELECT grantee::text FROM ml.grants WHERE model_name = $1', [modelName]);
  for (const table of ['ml.trials', 'ml.training_info', 'ml.feature_info']) await client.query(`DELETE FROM ${table} WHERE model_id = $1`, [modelId]);
  return [owner, ...readers.rows.map((r) => r.grantee)];
}

export interface TrainingInfoRow {
  iteration: number;
  loss: number;
  evalLoss: number | null;
  learnRate: number | null;
  durationMs: number;
  clusterInfo?: unknown;
}

export async function insertTrainingInfo(client: PoolClient, modelId: string, run: number, t: TrainingInfoRow[]): Promise<void> {
  await client.query(
    `INSERT INTO ml.training_info (model_id, training_run, iteration, loss, duration_ms, cluster_info, eval_loss, learning_rate)
     SELECT $1, $2, * FROM unnest($3::int[], $4::float8[], $5::float8[], $6::jsonb[], $7::float8[], $8::float8[])`,
    [
      modelId,
      run,
      t.map((i) => i.iteration),
      t.map((i) => i.loss),
      t.map((i) => i.durationMs),
      t.map((i) => (i.clusterInfo === undefined ? null : JSON.stringify(i.clusterInfo))),
      t.map((i) => i.evalLoss),
      t.map((i) => i.learnRate),
    ],
  );
}

export async function insertFeatureInfo(client: PoolClient, modelId: string, f: FeatureStats[]): Promise<void> {
  await client.query(
    `INSERT INTO ml.feature_info (model_id, ordinal, input, type, min, max, mean, median, stddev, null_count, category_count, warning)
     SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::float8[], $8::float8[],
                              $9::float8[], $10::bigint[], $11::int[], $12::text[])`,
    [
      modelId,
      f.map((_, i) => i),
      f.map((s) => s.input),
      f.map((s) => s.type),
      f.map((s) => s.min),
      f.map((s) => s.max),
      f.map((s) => s.mean),
      f.map((s) => s.median),
      f.map((s) => s.stddev),
      f.map((s) => s.null_count),
      f.map((s) => s.category_count),
      f.map((s) => s.warning),
    ],
  );
}

/** A public generated function: its qualified name, its CREATE statement and its comment. */
export interface PublicFunction {
  name: string; // schema-qualified, quoted
  argumentTypes: string;
  create: string;
  comment: string;
}

/**
 * The public functions (default <model>_predict, and <model>_predict_probabilities for
 * classifiers) serve the newest ready version. Returns their signatures, or null when a newer
 * version is already ready (then this version keeps only its internal function, reachable as
 * 'model@version'). Older versions' public functions that differ go away.
 */
export async function publishFunctions(client: PoolClient, w: { modelId: string; modelName: string; version: number }, fns: PublicFunction[], roles: string[]): Promise<string[] | null> {
  const newer = await client.query(
    `SELECT 1 FROM ml.models m JOIN ml.jobs j ON j.id = m.job_id
      WHERE m.model_name = $1 AND m.version > $2 AND j.status = 'ready'`,
    [w.modelName, w.version],
  );
  if ((newer.rowCount ?? 0) > 0) return null;
  const wanted = new Set<string>();
  for (const f of fns) {
    const { rows } = await client.query<{ sig: string | null }>(`SELECT to_regprocedure($1)::text AS sig`, [`${f.name}(${f.argumentTypes})`]);
    if (rows[0]?.sig) wanted.add(rows[0].sig);
  }
  const old = await client.query<{ sig: string }>(
    `SELECT DISTINCT sig FROM ml.models, unnest(ARRAY[function_signature, probabilities_signature]) AS sig
      WHERE model_name = $1 AND id <> $2 AND sig IS NOT NULL`,
    [w.modelName, w.modelId],
  );
  for (const { sig } of old.rows) if (!wanted.has(sig)) await client.query(`DROP FUNCTION IF EXISTS ${sig}`);
  await client.query(`UPDATE ml.models SET function_signature = NULL, probabilities_signature = NULL WHERE model_name = $1 AND id <> $2`, [w.modelName, w.modelId]);
  const signatures: string[] = [];
  for (const f of fns) {
    const signature = `${f.name}(${f.argumentTypes})`;
    await client.query(f.create);
    await client.query(`COMMENT ON FUNCTION ${signature} IS ${quoteLiteral(f.comment)}`);
    await restrictExecute(client, signature, roles);
    const { rows } = await client.query<{ sig: string }>(`SELECT to_regprocedure($1)::text AS sig`, [signature]);
    signatures.push(rows[0]!.sig);
  }
  return signatures;
}

/**
 * Replaces the output table, as the requester (who owns it then), inside the write-back
 * transaction: the labels appear together with the model or not at all.
 */
async function writeOutputTable(client: PoolClient, requester: string, o: OutputTable): Promise<void> {
  const name = `${quoteIdent(o.table[0])}.${quoteIdent(o.table[1])}`;
  const density = o.probabilities !== undefined;
  const columns = [
    ...o.kept.map((k) => `${quoteIdent(k.name)} ${k.type}`),
    'centroid_id int',
    ...(density ? ['membership_probability float8', 'outlier_score float8'] : []),
  ];
  await client.query(`SET LOCAL ROLE ${quoteIdent(requester)}`);
  await client.query(`DROP TABLE IF EXISTS ${name}`);
  await client.query(`CREATE TABLE ${name} (${columns.join(', ')})`);
  const escape = (v: string | null) => (v === null ? '\\N' : v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r'));
  function* lines() {
    const n = o.labels.length;
    for (let start = 0; start < n; start += 10_000) {
      let chunk = '';
      for (let i = start; i < Math.min(n, start + 10_000); i++) {
        const fields = o.kept.map((k) => escape(k.values[i]!));
        const l = o.labels[i]!;
        fields.push(String(l < 0 ? -1 : l + 1));
        if (density) fields.push(String(o.probabilities![i]), String(o.outlierScores![i]));
        chunk += fields.join('\t') + '\n';
      }
      yield chunk;
    }
  }
  await pipeline(Readable.from(lines()), client.query(copyFrom(`COPY ${name} FROM STDIN`)));
  await client.query('RESET ROLE');
}

async function insertCentroids(client: PoolClient, modelId: string, trialId: number, c: CentroidRow[]): Promise<void> {
  await client.query(
    `INSERT INTO ml.centroids (model_id, trial_id, centroid_id, ordinal, feature, numerical_value, standardized_value, categorical_value)
     SELECT $1, $2, * FROM unnest($3::int[], $4::int[], $5::text[], $6::float8[], $7::float8[], $8::jsonb[])`,
    [
      modelId,
      trialId,
      c.map((r) => r.centroid_id),
      c.map((r) => r.ordinal),
      c.map((r) => r.feature),
      c.map((r) => r.numerical_value),
      c.map((r) => r.standardized_value),
      c.map((r) => (r.categorical_value ? JSON.stringify(r.categorical_value) : null)),
    ],
  );
}

async function publishPredictFunction(
  client: PoolClient,
  apiSchema: string,
  w: ModelWrite,
  compiled: Parameters<typeof predictFunctionSql>[0],
  roles: string[],
): Promise<string | null> {
  const name = `${quoteIdent(apiSchema)}.${quoteIdent(w.functionName)}`;
  const what = compiled.groups
    ? `cluster (1..${compiled.groups.length}, -1 = noise) of density model`
    : `nearest centroid (1..${compiled.k}) of k-means model`;
  const sigs = await publishFunctions(
    client,
    w,
    [{ name, argumentTypes: argumentTypes(w.spec), create: predictFunctionSql(compiled, name), comment: `sqlml: ${what} ${w.modelName} version ${w.version}; arguments are its features in training order` }],
    roles,
  );
  return sigs ? sigs[0]! : null;
}

/** Generated functions are executable by the model's owner and grantees only (and the sidecar, their owner). */
export async function restrictExecute(client: PoolClient, signature: string, roles: string[]): Promise<void> {
  await client.query(`REVOKE ALL ON FUNCTION ${signature} FROM PUBLIC`);
  await client.query(`GRANT EXECUTE ON FUNCTION ${signature} TO ${roles.map(quoteIdent).join(', ')}`);
}
