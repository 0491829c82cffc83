import { withTransaction } from '../db/connect.ts';
import type { FeatureStats } from '../features/prepare.ts';
import { argumentTypes } from '../models/compile.ts';
import { contributionsFunctionSql, predictFunctionSql, probabilitiesFunctionSql, scoresFunctionSql, vectorFunctionSql } from '../models/supervised/to-sql.ts';
import type { SupervisedArtifact } from '../models/supervised/artifact.ts';
import { compiledOf } from '../models/supervised/artifact.ts';
import { sql } from 'kysely';
import { generatedName, publicName } from './names.ts';
import { ml, run } from './sql.ts';
import { insertFeatureInfo, insertTrainingInfo, openWriteBack, type StoreContext, type TrainingInfoRow } from './write-back.ts';
import { publishFunctions, recordFunction, restrictExecute, type PublicFunction } from './functions.ts';

export interface SupervisedTrial {
  trialId: number;
  hyperparameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
  artifact?: SupervisedArtifact;
  error?: string;
  isOptimal: boolean;
}

export interface SupervisedWrite {
  modelId: string;
  modelName: string;
  version: number;
  owner: string;
  functionName: string;
  trials: SupervisedTrial[];
  metrics: Record<string, unknown>;
  options: Record<string, unknown>;
  trainingInfo: TrainingInfoRow[];
  featureStats: FeatureStats[];
  finalProgress: Record<string, unknown>;
}

/** The artifact as stored: the ensemble's trees once, as explanation.forest (see SupervisedArtifact.ensemble). */
function storedArtifact(a: SupervisedArtifact): string {
  return JSON.stringify(a.ensemble ? { ...a, ensemble: { base: a.ensemble.base } } : a);
}

/** Writes a trained supervised model in one transaction (see writeModel for the k-means one). */
export async function writeSupervisedModel(ctx: StoreContext, w: SupervisedWrite): Promise<void> {
  await withTransaction(ctx.pool, async (client) => {
    const roles = await openWriteBack(client, ctx, w.modelId, w.modelName, w.owner);
    for (const t of w.trials) {
      if (!t.artifact) {
        await run(client, ml.insertInto('ml.trials').values({
          model_id: w.modelId, trial_id: t.trialId, hyperparameters: JSON.stringify(t.hyperparameters), metrics: JSON.stringify(t.metrics),
          status: 'failed', error_message: t.error ?? 'failed',
        }));
        continue;
      }
      const compiled = compiledOf(t.artifact);
      const scores = generatedName(w.modelId, t, 'scores');
      await client.query(scoresFunctionSql(compiled, scores));
      await restrictExecute(client, `${scores}(${argumentTypes(compiled.spec)})`, roles);
      await recordFunction(client, `${scores}(${argumentTypes(compiled.spec)})`, w.modelId, t.trialId, 'internal');
      // What ml_explain_predict reads per row: linear contributions, or the model-space row TreeSHAP walks.
      const kind = compiled.linear ? 'contributions' : 'vector';
      const explain = generatedName(w.modelId, t, kind);
      await client.query(compiled.linear ? contributionsFunctionSql(compiled, explain) : vectorFunctionSql(compiled, explain));
      await restrictExecute(client, `${explain}(${argumentTypes(compiled.spec)})`, roles);
      await recordFunction(client, `${explain}(${argumentTypes(compiled.spec)})`, w.modelId, t.trialId, 'internal');
      await run(client, ml.insertInto('ml.trials').values({
        model_id: w.modelId, trial_id: t.trialId, hyperparameters: JSON.stringify(t.hyperparameters), metrics: JSON.stringify(t.metrics), status: 'succeeded',
        is_optimal: t.isOptimal, artifact: storedArtifact(t.artifact), scores_function: scores, explain_function: explain,
      }));
      if (!t.isOptimal) continue;
      const fns: PublicFunction[] = [];
      const base = publicName(ctx.apiSchema, w.functionName);
      const types = argumentTypes(compiled.spec);
      const what =
        compiled.problem === 'regression'
          ? `predicted ${t.artifact.label}`
          : `predicted ${t.artifact.label} (${compiled.classes!.join(', ')})`;
      fns.push({ name: base, argumentTypes: types, create: predictFunctionSql(compiled, base), comment: `sqlml: ${what} by ${t.artifact.model_type} model ${w.modelName} version ${w.version}; arguments are its features in training order` });
      if (compiled.problem !== 'regression') {
        const probs = publicName(ctx.apiSchema, w.functionName, '_probabilities');
        fns.push({ name: probs, argumentTypes: types, create: probabilitiesFunctionSql(compiled, probs), comment: `sqlml: {"probabilities": [...], "labels": [...]} of model ${w.modelName} version ${w.version}` });
      }
      const sigs = await publishFunctions(client, w, fns, roles);
      // The served trial's artifact, copied in the server: parsing a forest's JSON (~0.7 MB for
      // 100 trees of depth 6) into jsonb takes ~50 ms, and it was parsed once already.
      await run(client, ml.updateTable('ml.models as m').from('ml.trials as t')
        .set((eb) => ({
          artifact: eb.ref('t.artifact'), metrics: JSON.stringify(w.metrics), options: JSON.stringify(w.options), trained_at: sql<Date>`now()`,
          scores_function: scores,
          ...(sigs ? { function_signature: sigs[0] ?? null, probabilities_signature: sigs[1] ?? null } : {}),
        }))
        .where('m.id', '=', w.modelId).where('t.model_id', '=', w.modelId).where('t.trial_id', '=', t.trialId));
    }
    await insertTrainingInfo(client, w.modelId, 0, w.trainingInfo);
    await insertFeatureInfo(client, w.modelId, w.featureStats);
    await ctx.queue.complete(client, ctx.jobId, w.finalProgress);
  });
}
