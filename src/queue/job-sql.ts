// Every job-state transition of the queue, in one place (as pg-boss's plans.ts). States:
//
//   queued ──claim──► training (kind train) / running (kind trial: one k of a sweep)
//   training ──write-back──► ready            running ──► done
//   training/running ──deterministic error──► failed
//   training/running ──transient error──► queued (run_after = now() + backoff) until max_attempts
//   training/running ──ml_cancel──► cancelled (between iterations)
//   training/running ──SIGTERM──► queued (released, the attempt is not counted)
//   training/running ──lease expired──► claimable again (another sidecar takes it over);
//                                       failed once max_attempts leases have expired
//   queued ──ml_cancel──► cancelled (in SQL, see ml_cancel)
//
// Each running attempt is an entry of `history` ({attempt, worker, started_at, ended_at,
// outcome, error}), so a dead sidecar's attempt stays visible after a takeover.

/** Closes the last history entry of column `h`: `outcome` and `error` are SQL expressions. */
const closeHistory = (outcome: string, error: string, h = 'history') => `
  jsonb_set(${h}, ARRAY[(jsonb_array_length(${h}) - 1)::text],
            ${h} -> (jsonb_array_length(${h}) - 1)
              || jsonb_build_object('ended_at', now(), 'outcome', ${outcome}::text, 'error', ${error}::text))`;

/** Gives up on jobs whose lease expired too often, and settles cancelled ones whose sidecar died. */
export const SWEEP_EXPIRED = `
UPDATE ml.jobs SET
  status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'failed' END,
  error = CASE WHEN cancel_requested THEN 'cancelled'
               ELSE format('the sidecar running this job stopped responding %s times (lease expired); giving up', attempts) END,
  finished_at = now(), locked_by = NULL, lease_expires_at = NULL,
  history = ${closeHistory("'lease expired'", 'NULL')}
WHERE status IN ('training', 'running') AND lease_expires_at < now()
  AND (cancel_requested OR attempts >= max_attempts)`;

/**
 * Claims the oldest claimable job: queued and due, or running with an expired lease (a dead
 * sidecar's). SKIP LOCKED lets any number of sidecars claim concurrently without blocking.
 * $1 worker id, $2 lease seconds, $3 a sweep's job id to claim only its trials (or NULL).
 */
export const CLAIM = `
WITH next AS (
  SELECT id FROM ml.jobs
  WHERE ((status = 'queued' AND run_after <= now())
         OR (status IN ('training', 'running') AND lease_expires_at < now()))
    AND NOT cancel_requested
    AND ($3::bigint IS NULL OR parent_id = $3::bigint)
  ORDER BY id
  LIMIT 1
  FOR UPDATE SKIP LOCKED
)
UPDATE ml.jobs j SET
  status = CASE WHEN j.kind = 'train' THEN 'training' ELSE 'running' END,
  locked_by = $1,
  lease_expires_at = now() + make_interval(secs => $2),
  heartbeat_at = now(),
  attempts = j.attempts + 1,
  started_at = coalesce(j.started_at, now()),
  history = CASE WHEN j.status IN ('training', 'running')
                 THEN ${closeHistory("'lease expired'", 'NULL', 'j.history')}
                 ELSE j.history END
            || jsonb_build_array(jsonb_build_object('attempt', j.attempts + 1, 'worker', $1::text, 'started_at', now()))
FROM next
WHERE j.id = next.id
RETURNING j.id::text AS id, j.kind, j.model_id::text AS model_id, j.query_function::text AS query_function, j.query_token, j.estimated_rows, j.requested_by::text AS requested_by,
          j.attempts, j.max_attempts, j.parent_id::text AS parent_id, j.payload`;

/** The trials of a sweep, one job each, so that any sidecar can train one. */
export const ENQUEUE_TRIALS = `
INSERT INTO ml.jobs (kind, model_id, training_query, requested_by, query_function, query_token, query_sql, estimated_rows, parent_id, payload)
SELECT 'trial', p.model_id, p.training_query, p.requested_by, p.query_function, p.query_token, p.query_sql, p.estimated_rows, p.id, t
  FROM ml.jobs p, unnest($2::jsonb[]) AS t
 WHERE p.id = $1`;

export const CHILDREN = `
SELECT id::text, status, (payload->>'trial_id')::int AS trial_id, error FROM ml.jobs WHERE parent_id = $1 ORDER BY id`;

/** A cancelled or failed sweep takes its queued trials with it and asks running ones to stop. */
export const CANCEL_CHILDREN = `
UPDATE ml.jobs SET status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
                   finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END,
                   cancel_requested = true
 WHERE parent_id = $1 AND status IN ('queued', 'running')`;

/** Renews the lease and stores progress; returns cancel_requested, or no row if the lease is lost. */
export const HEARTBEAT = `
UPDATE ml.jobs SET lease_expires_at = now() + make_interval(secs => $3), heartbeat_at = now(),
                   progress = coalesce($4::jsonb, progress)
WHERE id = $1 AND locked_by = $2 AND status IN ('training', 'running')
RETURNING cancel_requested`;

/** Progress between heartbeats (the worker throttles it); a finished job keeps its final progress. */
export const PROGRESS = `
UPDATE ml.jobs SET progress = $3::jsonb WHERE id = $1 AND locked_by = $2 AND status IN ('training', 'running')`;

/** $1 id, $2 worker, $3 message. */
export const FAIL = `
UPDATE ml.jobs SET status = 'failed', error = $3, finished_at = now(), locked_by = NULL, lease_expires_at = NULL,
                   history = ${closeHistory("'failed'", '$3')}
WHERE id = $1 AND locked_by = $2`;

/** Transient error: back to the queue after a capped exponential backoff. $4 = delay seconds. */
export const RETRY = `
UPDATE ml.jobs SET status = 'queued', error = $3, locked_by = NULL, lease_expires_at = NULL,
                   run_after = now() + make_interval(secs => $4),
                   history = ${closeHistory("'retry'", '$3')}
WHERE id = $1 AND locked_by = $2`;

export const CANCELLED = `
UPDATE ml.jobs SET status = 'cancelled', error = 'cancelled', finished_at = now(), locked_by = NULL, lease_expires_at = NULL,
                   history = ${closeHistory("'cancelled'", 'NULL')}
WHERE id = $1 AND locked_by = $2`;

/** SIGTERM: give the job back at once; the interrupted attempt does not count against max_attempts. */
export const RELEASE = `
UPDATE ml.jobs SET status = 'queued', locked_by = NULL, lease_expires_at = NULL, attempts = greatest(attempts - 1, 0),
                   history = ${closeHistory("'released'", 'NULL')}
WHERE id = $1 AND locked_by = $2`;

/** Inside the write-back transaction: lock the job row and check it is still ours. */
export const LOCK_OWN_JOB = `
SELECT 1 FROM ml.jobs WHERE id = $1 AND locked_by = $2 AND status IN ('training', 'running') FOR UPDATE`;

/** Last step of the write-back transaction. $3 = final progress. */
export const COMPLETE = `
UPDATE ml.jobs SET status = CASE WHEN kind = 'train' THEN 'ready' ELSE 'done' END,
                   finished_at = now(), locked_by = NULL, lease_expires_at = NULL, error = NULL,
                   progress = coalesce($3::jsonb, progress),
                   history = ${closeHistory("'ready'", 'NULL')}
WHERE id = $1 AND locked_by = $2`;

export interface ClaimedJob {
  id: string;
  kind: 'train' | 'trial';
  parent_id: string | null;
  payload: Record<string, unknown> | null;
  model_id: string;
  query_function: string | null; // the training function's oid (null: queued by the first layout)
  estimated_rows: number | null;
  query_token: string | null;
  requested_by: string;
  attempts: number;
  max_attempts: number;
}
