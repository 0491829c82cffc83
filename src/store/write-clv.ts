import { sql } from 'kysely';
import { withTransaction } from '../db/connect.ts';
import { compiledClv, type ClvArtifact } from '../models/clv/artifact.ts';
import { aliveFunctionSql, publicFunctionsSql, purchasesFunctionSql, scoresFunctionSql, type ClvFunctionNames } from '../models/clv/to-sql.ts';
import { generatedName, publicName } from './names.ts';
import { ml, run } from './sql.ts';
import { insertTrainingInfo, openWriteBack, type StoreContext, type TrainingInfoRow } from './write-back.ts';
import { publishFunctions, recordFunction, restrictExecute } from './functions.ts';

export interface ClvWrite {
  modelId: string;
  modelName: string;
  version: number;
  owner: string;
  functionPrefix: string; // <prefix>_p_alive, _expected_purchases, _expected_spend, _clv
  artifact: ClvArtifact;
  metrics: Record<string, unknown>;
  options: Record<string, unknown>;
  trainingInfo: TrainingInfoRow[];
  finalProgress: Record<string, unknown>;
}

const ALIVE_ARGS = 'float8, float8, float8';
const PURCHASES_ARGS = 'float8, float8, float8, float8';
const SCORES_ARGS = 'float8, float8, float8, float8, float8, float8';

/** Writes a fitted clv model in one transaction: its internal functions, public functions and rows. */
export async function writeClvModel(ctx: StoreContext, w: ClvWrite): Promise<void> {
  await withTransaction(ctx.pool, async (client) => {
    const roles = await openWriteBack(client, ctx, w.modelId, w.modelName, w.owner);
    const trial = { trialId: 1, isOptimal: true };
    const compiled = compiledClv(w.artifact);
    const names: ClvFunctionNames = { alive: generatedName(w.modelId, trial, 'alive'), purchases: generatedName(w.modelId, trial, 'purchases'), scores: generatedName(w.modelId, trial, 'scores') };
    const { scores } = names;
    const alive = aliveFunctionSql(compiled, names.alive);
    const internal: [string, string, string][] = [
      ...(alive ? [[alive, names.alive, ALIVE_ARGS] as [string, string, string]] : []),
      [purchasesFunctionSql(compiled, names), names.purchases, PURCHASES_ARGS],
      [scoresFunctionSql(compiled, names), scores, SCORES_ARGS],
    ];
    for (const [create, fn, args] of internal) {
      await client.query(create);
      await restrictExecute(client, `${fn}(${args})`, roles);
      await recordFunction(client, `${fn}(${args})`, w.modelId, 1, 'internal');
    }
    await run(client, ml.insertInto('ml.trials').values({
      model_id: w.modelId, trial_id: 1, hyperparameters: JSON.stringify({ purchase_model: w.artifact.purchase_model, spend_model: w.artifact.spend_model }),
      metrics: JSON.stringify(w.metrics), status: 'succeeded', is_optimal: true, artifact: JSON.stringify(w.artifact), scores_function: scores,
    }));
    const p = (suffix: '_p_alive' | '_expected_purchases' | '_expected_spend' | '_clv') => publicName(ctx.apiSchema, w.functionPrefix, suffix);
    const fns = publicFunctionsSql(compiled, { pAlive: p('_p_alive'), purchases: p('_expected_purchases'), spend: p('_expected_spend'), clv: p('_clv') }, names).map((f) => ({
      ...f,
      comment: `sqlml: ${f.name.split('.').pop()!.replace(/"/g, '')} of clv model ${w.modelName} version ${w.version} (${w.artifact.purchase_model}${w.artifact.spend ? ' + gamma_gamma' : ''}; time unit ${w.artifact.time_unit})`,
    }));
    const sigs = await publishFunctions(client, w, fns, roles);
    await run(client, ml.updateTable('ml.models').set({
      artifact: JSON.stringify(w.artifact), metrics: JSON.stringify(w.metrics), options: JSON.stringify(w.options), trained_at: sql<Date>`now()`,
      scores_function: scores,
      ...(sigs ? { function_signature: sigs[3] ?? null } : {}),
    }).where('id', '=', w.modelId));
    await insertTrainingInfo(client, w.modelId, 0, w.trainingInfo);
    await ctx.queue.complete(client, ctx.jobId, w.finalProgress);
  });
}
