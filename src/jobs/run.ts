import { UserError } from '../util/errors.ts';
import type { JobContext } from './context.ts';
import { loadModelRow } from './training-data.ts';
import { trainClvJob } from './train-clv.ts';
import { trainPcaJob } from './train-pca.ts';
import { trainHdbscanJob } from './train-hdbscan.ts';
import { trainKmeansJob } from './train-kmeans.ts';
import { trainSupervisedJob } from './train-supervised.ts';
import { SUPERVISED_TYPES } from '../models/supervised/options.ts';
import { trainTrialJob } from './trial-jobs.ts';

/** One handler per job kind. */
export async function runJob(ctx: JobContext): Promise<void> {
  switch (ctx.job.kind) {
    case 'train': {
      const model = await loadModelRow(ctx.pool, ctx.job.model_id);
      if (model.model_type === 'kmeans') return trainKmeansJob(ctx, model);
      if (model.model_type === 'hdbscan') return trainHdbscanJob(ctx, model);
      if (model.model_type === 'clv') return trainClvJob(ctx, model);
      if (model.model_type === 'pca') return trainPcaJob(ctx, model);
      if ((SUPERVISED_TYPES as readonly string[]).includes(model.model_type)) return trainSupervisedJob(ctx, model);
      throw new UserError(`unknown model_type "${model.model_type}"`);
    }
    case 'trial':
      return trainTrialJob(ctx);
    default:
      throw new Error(`unknown job kind ${String(ctx.job.kind)}`);
  }
}
