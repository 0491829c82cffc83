import type { Pool } from '../db/connect.ts';
import type { TrainingSource } from '../data/load.ts';
import type { ClaimedJob } from '../queue/job-sql.ts';
import type { JobQueue } from '../queue/job-queue.ts';
import type { StoreContext } from '../store/write-back.ts';

/** What a job handler gets from the worker. */
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
  /** Records progress without yielding or stopping (from a timer, e.g. rows read so far). */
  report: (progress: Record<string, unknown>) => void;
  /** Keep another claimed job's lease alive with this one's (a sweep running its own trials). */
  adopt: (jobId: string) => () => void;
}

/** What the store layer needs of a job to write its model back. */
export function storeContext(ctx: JobContext): StoreContext {
  return { pool: ctx.pool, queue: ctx.queue, jobId: ctx.job.id, apiSchema: ctx.apiSchema, requester: ctx.job.requested_by };
}
