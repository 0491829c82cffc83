import type { PoolClient } from 'pg';
import type { Pool } from '../db/connect.ts';
import type { StoredTrial } from '../models/kmeans/artifact.ts';
import { ml, run } from './sql.ts';

// A num_clusters sweep's trials while it runs: each trial job stores its centroids here, and the
// sweep reads them all back before it chooses and writes the model.

export async function storeSweepTrial(client: PoolClient, modelId: string, trialId: number, hyperparameters: Record<string, unknown>, t: StoredTrial): Promise<void> {
  await run(client, ml.insertInto('ml.trials')
    .values({ model_id: modelId, trial_id: trialId, hyperparameters: JSON.stringify(hyperparameters), status: 'succeeded', artifact: JSON.stringify(t) })
    .onConflict((oc) => oc.columns(['model_id', 'trial_id']).doUpdateSet((eb) => ({
      hyperparameters: eb.ref('excluded.hyperparameters'), status: 'succeeded', artifact: eb.ref('excluded.artifact'),
    }))));
}

export async function sweepTrials(pool: Pool, modelId: string): Promise<{ trial_id: number; artifact: StoredTrial }[]> {
  const rows = await run(pool, ml.selectFrom('ml.trials').select(['trial_id', 'artifact']).where('model_id', '=', modelId).where('status', '=', 'succeeded'));
  return rows.map((r) => ({ trial_id: r.trial_id, artifact: r.artifact as StoredTrial }));
}
