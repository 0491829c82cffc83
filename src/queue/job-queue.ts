import type { PoolClient } from 'pg';
import type { Pool } from '../db/connect.ts';
import { LeaseLost } from '../util/errors.ts';
import { CHILDREN, CLAIM, COMPLETE, ENQUEUE_TRIALS, FAIL, LOCK_OWN_JOB, RELEASE, type ClaimedJob } from './job-sql.ts';

/**
 * What a job may do to the queue, bound to the worker that runs it (its id and its lease): the
 * job handlers get this from the worker and never see the queue's SQL.
 */
export interface JobQueue {
  /** Inside a write-back transaction: lock the job's row; throws LeaseLost if another sidecar took it. */
  lockOwn(client: PoolClient, jobId: string): Promise<void>;
  /** Last step of a write-back transaction: the job is ready (train) or done (trial). */
  complete(client: PoolClient, jobId: string, progress: Record<string, unknown>): Promise<void>;
  fail(jobId: string, message: string): Promise<void>;
  /** Gives a claimed job back to the queue (the attempt does not count). */
  release(jobId: string): Promise<void>;
  /** A sweep's trials, one job each (once: a retried sweep finds them there). */
  enqueueTrials(parentId: string, payloads: unknown[]): Promise<void>;
  /** Claims one of a sweep's trials with the worker's lease, or null when none is left. */
  claimTrial(parentId: string): Promise<ClaimedJob | null>;
  children(parentId: string): Promise<{ id: string; status: string; trial_id: number; error: string | null }[]>;
}

export function jobQueue(pool: Pool, workerId: string, leaseSeconds: number): JobQueue {
  return {
    async lockOwn(client, jobId) {
      if ((await client.query(LOCK_OWN_JOB, [jobId, workerId])).rowCount === 0) throw new LeaseLost(jobId);
    },
    async complete(client, jobId, progress) {
      await client.query(COMPLETE, [jobId, workerId, JSON.stringify(progress)]);
    },
    async fail(jobId, message) {
      await pool.query(FAIL, [jobId, workerId, message]);
    },
    async release(jobId) {
      await pool.query(RELEASE, [jobId, workerId]);
    },
    async enqueueTrials(parentId, payloads) {
      const existing = await pool.query(CHILDREN, [parentId]);
      if (existing.rowCount === 0) await pool.query(ENQUEUE_TRIALS, [parentId, payloads.map((p) => JSON.stringify(p))]);
    },
    async claimTrial(parentId) {
      const { rows } = await pool.query<ClaimedJob>(CLAIM, [workerId, leaseSeconds, parentId]);
      return rows[0] ?? null;
    },
    async children(parentId) {
      return (await pool.query<{ id: string; status: string; trial_id: number; error: string | null }>(CHILDREN, [parentId])).rows;
    },
  };
}
