import type { Pool } from '../db/connect.ts';
import type { TrainingSource } from '../data/load.ts';
import { UserError } from '../util/errors.ts';
import type { ClaimedJob } from '../queue/job-sql.ts';
import type { JobQueue } from '../queue/job-queue.ts';
import { loadModelRow } from './prepare.ts';
import { trainHdbscanJob } from './train-hdbscan.ts';
import { trainKmeansJob } from './train-kmeans.ts';
import { trainSupervisedJob } from './train-supervised.ts';
import { SUPERVISED_TYPES } from '../models/supervised/options.ts';
import { trainTrialJob } from './sweep.ts';

export interface JobContext {
  pool: Pool;
  job: ClaimedJob;
  /** Where the job's rows come from (the training view, read as the reader role). */
  source: TrainingSource;
  /** The queue as this job may use it, with the worker's id and lease. */
  queue: JobQueue;
  apiSchema: string;
  statementTimeoutMs: number;
  maxBytes: number; // memory budget for one training set (--max-memory)
  /**
   * Called between iterations with the current progress: yields to the event loop and throws
   * JobCancelled / WorkerStopping / LeaseLost when the job must stop.
   */
  checkpoint: (progress: Record<string, unknown>) => Promise<void>;
  /** Keep another claimed job's lease alive with this one's (a sweep running its own trials). */
  adopt: (jobId: string) => () => void;
}

/** One handler per job kind. */
export async function runJob(ctx: JobContext): Promise<void> {
  switch (ctx.job.kind) {
    case 'train': {
      const model = await loadModelRow(ctx);
      if (model.model_type === 'kmeans') return trainKmeansJob(ctx, model);
      if (model.model_type === 'hdbscan') return trainHdbscanJob(ctx, model);
      if ((SUPERVISED_TYPES as readonly string[]).includes(model.model_type)) return trainSupervisedJob(ctx, model);
      throw new UserError(`unknown model_type "${model.model_type}"`);
    }
    case 'trial':
      return trainTrialJob(ctx);
    default:
      throw new Error(`unknown job kind ${String(ctx.job.kind)}`);
  }
}
