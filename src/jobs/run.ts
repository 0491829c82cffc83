import { UserError } from '../util/errors.ts';
import type { JobContext } from './context.ts';
import { loadModelRow } from './training-data.ts';
import { SUPERVISED_TYPES } from '../models/supervised/options.ts';

/** One handler per job kind, each loaded when a job of its kind first comes (a sidecar holds the code it uses). */
export async function runJob(ctx: JobContext): Promise<void> {
  switch (ctx.job.kind) {
    case 'train': {
      const model = await loadModelRow(ctx.pool, ctx.job.model_id);
      if (model.model_type === 'kmeans') return (await import('./train-kmeans.ts')).trainKmeansJob(ctx, model);
      if (model.model_type === 'hdbscan') return (await import('./train-hdbscan.ts')).trainHdbscanJob(ctx, model);
      if (model.model_type === 'clv') return (await import('./train-clv.ts')).trainClvJob(ctx, model);
      if (model.model_type === 'pca') return (await import('./train-pca.ts')).trainPcaJob(ctx, model);
      if ((SUPERVISED_TYPES as readonly string[]).includes(model.model_type)) return (await import('./train-supervised.ts')).trainSupervisedJob(ctx, model);
      throw new UserError(`unknown model_type "${model.model_type}"`);
    }
    case 'trial':
      return (await import('./trial-jobs.ts')).trainTrialJob(ctx);
    default:
      throw new Error(`unknown job kind ${String(ctx.job.kind)}`);
  }
}
