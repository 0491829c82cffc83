import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { KeptColumn } from '../data/load.ts';
import { quoteIdent, withTransaction } from '../db/connect.ts';
import type { FeatureSpec, FeatureStats } from '../features/prepare.ts';
import type { CentroidRow } from '../features/present.ts';
import type { IterationInfo } from '../models/kmeans/lloyd.ts';
import { argumentTypes, distancesFunctionSql, nearestFunctionSql, predictFunctionSql, scoringExpression } from '../models/kmeans/to-sql.ts';
import { projectionFunctionSql } from '../models/pca/to-sql.ts';
import { UserError } from '../util/errors.ts';
import { sql } from 'kysely';
import { generatedName, publicName } from './names.ts';
import { publishFunctions, recordFunction, restrictExecute } from './functions.ts';
import { ml, run } from './sql.ts';
import type { Pool } from '../db/connect.ts';
import type { DensityArtifact } from '../models/hdbscan/artifact.ts';
import type { KmeansArtifact } from '../models/kmeans/artifact.ts';
import type { JobQueue } from '../queue/job-queue.ts';

/** What writing a job's model back needs of the job (jobs/context.ts builds it). */
export interface StoreContext {
  pool: Pool;
  queue: Pick<JobQueue, 'lockOwn' | 'complete'>;
  jobId: string;
  apiSchema: string;
  requester: string; // the role that asked: owner of the model and of its output table
}

/** One trial (one k of a sweep; a plain model has one). A failed trial has `error` only. */
export type TrialWrite = {
  trialId: number;
  hyperparameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
  isOptimal: boolean;
  isElbow: boolean | null;
} & ({ artifact: KmeansArtifact | DensityArtifact; centroidRows: CentroidRow[]; error?: undefined } | { error: string; artifact?: undefined; centroidRows?: undefined });


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
export async function writeModel(ctx: StoreContext, w: ModelWrite): Promise<void> {
  await withTransaction(ctx.pool, async (client) => {
    const roles = await openWriteBack(client, ctx, w.modelId, w.modelName, w.owner);
    await run(client, ml.deleteFrom('ml.centroids').where('model_id', '=', w.modelId));
    let servedDistances = '';
    let signature: string | null = null;
    for (const t of w.trials) {
      if (t.error !== undefined) {
        await run(client, ml.insertInto('ml.trials').values({
          model_id: w.modelId, trial_id: t.trialId, hyperparameters: JSON.stringify(t.hyperparameters), status: 'failed', error_message: t.error,
        }));
        continue;
      }
      // The optimal trial's function keeps the short name the model row points at.
      const distances = generatedName(w.modelId, t, 'distances');
      const compiled = {
        spec: w.spec,
        centroids: Float64Array.from(t.artifact.centroids.flat()),
        k: t.artifact.centroids.length,
        distance: t.artifact.distance,
        groups: 'groups' in t.artifact ? t.artifact.groups : undefined,
        reach: 'reach' in t.artifact ? t.artifact.reach : undefined,
      };
      await client.query(distancesFunctionSql(compiled, distances));
      await restrictExecute(client, `${distances}(${argumentTypes(w.spec)})`, roles);
      await recordFunction(client, `${distances}(${argumentTypes(w.spec)})`, w.modelId, t.trialId, 'internal');
      // k-means: the ranked nearest centroids for ml_predict.
      let nearest: string | null = null;
      if (!compiled.groups) {
        nearest = generatedName(w.modelId, t, 'nearest');
        await client.query(nearestFunctionSql(compiled, nearest));
        await restrictExecute(client, `${nearest}(${argumentTypes(w.spec)})`, roles);
        await recordFunction(client, `${nearest}(${argumentTypes(w.spec)})`, w.modelId, t.trialId, 'internal');
      }
      if (!compiled.groups && 'centroid_distances' in t.artifact && t.isOptimal) t.artifact.scoring_expression = scoringExpression(compiled) ?? undefined;
      const projection = t.artifact.projection;
      if (projection) {
        projection.function = generatedName(w.modelId, t, 'projection');
        const types = argumentTypes(w.spec);
        await client.query(projectionFunctionSql({ spec: w.spec, center: projection.center, components: projection.components }, projection.function));
        await restrictExecute(client, `${projection.function}(${types})`, roles);
        await recordFunction(client, `${projection.function}(${types})`, w.modelId, t.trialId, 'internal');
      }
      await run(client, ml.insertInto('ml.trials').values({
        model_id: w.modelId, trial_id: t.trialId, hyperparameters: JSON.stringify(t.hyperparameters), metrics: JSON.stringify(t.metrics), status: 'succeeded',
        is_optimal: t.isOptimal, is_elbow: t.isElbow, artifact: JSON.stringify(t.artifact), scores_function: distances, nearest_function: nearest,
      }));
      await insertCentroids(client, w.modelId, t.trialId, t.centroidRows);
      if (t.isOptimal) {
        servedDistances = distances;
        signature = await publishPredictFunction(client, ctx.apiSchema, w, compiled, roles);
        await run(client, ml.updateTable('ml.models').where('id', '=', w.modelId).set((eb) => ({
          artifact: JSON.stringify(t.artifact), metrics: JSON.stringify(w.metrics), options: JSON.stringify(w.options), trained_at: sql<Date>`now()`,
          scores_function: servedDistances, function_signature: eb.fn.coalesce(eb.val(signature), eb.ref('function_signature')),
        })));
      }
    }
    await insertTrainingInfo(client, w.modelId, w.trainingRun, w.trainingInfo.map((i) => ({ ...i, evalLoss: null, learnRate: null })));
    await insertFeatureInfo(client, w.modelId, w.featureStats);
    if (w.output) await writeOutputTable(client, w.modelName, ctx.requester, w.output);
    await ctx.queue.complete(client, ctx.jobId, w.finalProgress);
  });
}

/**
 * Starts a write-back inside its transaction: signatures print schema-qualified, the job must
 * still be ours (else nothing is written: another sidecar took it over), write-backs of one
 * model's versions serialize (they share the public function), and what an earlier attempt
 * wrote is cleared. Returns the roles that may execute the generated functions.
 */
export async function openWriteBack(client: PoolClient, ctx: StoreContext, modelId: string, modelName: string, owner: string): Promise<string[]> {
  await client.query('SET LOCAL search_path TO pg_catalog');
  await ctx.queue.lockOwn(client, ctx.jobId);
  await client.query('SELECT ml.lock_model_name($1)', [modelName]);
  const readers = await run(client, ml.selectFrom('ml.grants').select('grantee').where('model_name', '=', modelName));
  await client.query(`SELECT ml.drop_generated($1, ARRAY['internal'])`, [modelId]);
  for (const table of ['ml.trials', 'ml.training_info', 'ml.feature_info'] as const) await run(client, ml.deleteFrom(table).where('model_id', '=', modelId));
  return [owner, ...readers.map((r) => r.grantee)];
}

export interface TrainingInfoRow {
  iteration: number;
  loss: number;
  evalLoss: number | null;
  learnRate: number | null;
  durationMs: number;
  clusterInfo?: unknown;
  mode?: string; // where the iteration ran (in-database k-means)
  bytes?: number; // what it brought to the sidecar
}

export async function insertTrainingInfo(client: PoolClient, modelId: string, run: number, t: TrainingInfoRow[]): Promise<void> {
  await client.query(
    `INSERT INTO ml.training_info (model_id, training_run, iteration, loss, duration_ms, cluster_info, eval_loss, learning_rate, training_mode, bytes_moved)
     SELECT $1, $2, * FROM unnest($3::int[], $4::float8[], $5::float8[], $6::jsonb[], $7::float8[], $8::float8[], $9::text[], $10::bigint[])`,
    [
      modelId,
      run,
      t.map((i) => i.iteration),
      t.map((i) => i.loss),
      t.map((i) => i.durationMs),
      t.map((i) => (i.clusterInfo === undefined ? null : JSON.stringify(i.clusterInfo))),
      t.map((i) => i.evalLoss),
      t.map((i) => i.learnRate),
      t.map((i) => i.mode ?? null),
      t.map((i) => i.bytes ?? null),
    ],
  );
}

export async function insertFeatureInfo(client: PoolClient, modelId: string, f: FeatureStats[]): Promise<void> {
  await client.query(
    `INSERT INTO ml.feature_info (model_id, ordinal, input, type, min, max, mean, median, stddev, null_count, category_count, warning,
                                 kept_categories, other_share)
     SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::float8[], $8::float8[],
                              $9::float8[], $10::bigint[], $11::int[], $12::text[], $13::int[], $14::float8[])`,
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
      f.map((s) => s.kept_categories),
      f.map((s) => s.other_share),
    ],
  );
}


/**
 * Replaces the output table inside the write-back transaction (the labels appear together with
 * the model or not at all). It belongs to the sidecar's role, which never writes into a table a
 * user could have fitted with triggers; its owner-to-be gets SELECT. Column types are built-in
 * ones (others were read as text), so writing runs no user code.
 */
async function writeOutputTable(client: PoolClient, modelName: string, requester: string, o: OutputTable): Promise<void> {
  const [schema, table] = o.table;
  const name = `${quoteIdent(schema)}.${quoteIdent(table)}`;
  const { rows } = await client.query<{ nsp: string | null; rel: string | null; owner: string | null; ours: boolean; may: boolean | null; we_may: boolean | null; me: string }>(
    `SELECT n.oid::text AS nsp, c.oid::text AS rel, pg_get_userbyid(c.relowner)::text AS owner,
            EXISTS (SELECT 1 FROM ml.output_tables t WHERE t.relid = c.oid AND t.model_name = $3 AND t.owner = $4) AS ours,
            has_schema_privilege($4::name, n.oid, 'CREATE') AS may, has_schema_privilege(n.oid, 'CREATE') AS we_may, current_user::text AS me
       FROM (SELECT 1) x LEFT JOIN pg_namespace n ON n.nspname = $1
       LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = $2`,
    [schema, table, modelName, requester],
  );
  const r = rows[0]!;
  if (!r.nsp) throw new UserError(`option "output_table": schema "${schema}" does not exist`);
  if (!r.may) throw new UserError(`option "output_table": role "${requester}" may not create tables in schema "${schema}"`);
  if (!r.we_may) {
    throw new UserError(`option "output_table": the sidecar's role "${r.me}" may not create tables in schema "${schema}"; run GRANT CREATE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(r.me)}`);
  }
  if (r.rel && !r.ours) {
    throw new UserError(`option "output_table": ${name} already exists (owner "${r.owner}") and was not written by sqlml for model "${modelName}"; choose another name or drop it`);
  }
  const density = o.probabilities !== undefined;
  const columns = [
    ...o.kept.map((k) => `${quoteIdent(k.name)} ${k.type}`),
    'centroid_id int',
    ...(density ? ['membership_probability float8', 'outlier_score float8'] : []),
  ];
  if (r.rel) {
    // CASCADE: an object someone built on the table must not keep the model from being retrained
    await client.query(`DROP TABLE ${name} CASCADE`);
    await run(client, ml.deleteFrom('ml.output_tables').where('relid', '=', Number(r.rel)));
  }
  await client.query(`CREATE TABLE ${name} (${columns.join(', ')})`);
  await run(client, ml.insertInto('ml.output_tables').values({ relid: sql<number>`to_regclass(${name})::oid`, model_name: modelName, owner: requester }));
  await client.query(`GRANT SELECT ON ${name} TO ${quoteIdent(requester)}`);
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
  const name = publicName(apiSchema, w.functionName);
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

