import { sql } from 'kysely';
import { withTransaction } from '../db/connect.ts';
import type { FeatureStats } from '../features/prepare.ts';
import { argumentTypes } from '../models/compile.ts';
import { projectionFunctionSql, type CompiledPca } from '../models/pca/to-sql.ts';
import { generatedName, publicName } from './names.ts';
import { ml, run } from './sql.ts';
import { insertFeatureInfo, openWriteBack, type StoreContext } from './write-back.ts';
import { publishFunctions, recordFunction, restrictExecute } from './functions.ts';

export interface PcaWrite {
  modelId: string;
  modelName: string;
  version: number;
  owner: string;
  functionName: string;
  compiled: CompiledPca;
  artifact: Record<string, unknown>;
  metrics: Record<string, unknown>;
  options: Record<string, unknown>;
  featureStats: FeatureStats[];
  finalProgress: Record<string, unknown>;
}

/** Writes a PCA model in one transaction: its projection (internal, and the public function) and rows. */
export async function writePcaModel(ctx: StoreContext, w: PcaWrite): Promise<void> {
  await withTransaction(ctx.pool, async (client) => {
    const roles = await openWriteBack(client, ctx, w.modelId, w.modelName, w.owner);
    const scores = generatedName(w.modelId, { trialId: 1, isOptimal: true }, 'scores');
    const types = argumentTypes(w.compiled.spec);
    await client.query(projectionFunctionSql(w.compiled, scores));
    await restrictExecute(client, `${scores}(${types})`, roles);
    await recordFunction(client, `${scores}(${types})`, w.modelId, 1, 'internal');
    await run(client, ml.insertInto('ml.trials').values({
      model_id: w.modelId, trial_id: 1, hyperparameters: JSON.stringify({ num_principal_components: w.compiled.components.length }),
      metrics: JSON.stringify(w.metrics), status: 'succeeded', is_optimal: true, artifact: JSON.stringify(w.artifact), scores_function: scores,
    }));
    const name = publicName(ctx.apiSchema, w.functionName);
    const sigs = await publishFunctions(client, w, [{
      name, argumentTypes: types, create: projectionFunctionSql(w.compiled, name),
      comment: `sqlml: the ${w.compiled.components.length} principal component scores of PCA model ${w.modelName} version ${w.version}; arguments are its features in training order`,
    }], roles);
    await run(client, ml.updateTable('ml.models').set({
      artifact: JSON.stringify(w.artifact), metrics: JSON.stringify(w.metrics), options: JSON.stringify(w.options), trained_at: sql<Date>`now()`,
      scores_function: scores, ...(sigs ? { function_signature: sigs[0] ?? null } : {}),
    }).where('id', '=', w.modelId));
    await insertFeatureInfo(client, w.modelId, w.featureStats);
    await ctx.queue.complete(client, ctx.jobId, w.finalProgress);
  });
}
