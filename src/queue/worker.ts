import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Pool } from '../db/connect.ts';
import { checkSchema } from '../db/migrate.ts';
import { checkReader } from '../db/roles.ts';
import type { JobContext } from '../jobs/context.ts';
import { runJob } from '../jobs/run.ts';
import { JobCancelled, LeaseLost, WorkerStopping, isTransient, messageOf } from '../util/errors.ts';
import { log } from '../util/log.ts';
import { CANCELLED, CANCEL_CHILDREN, CLAIM, FAIL, HEARTBEAT, PROGRESS, RELEASE, RETRY, SWEEP_EXPIRED, type ClaimedJob } from './job-sql.ts';
import { Listener, backoffMs } from './listener.ts';
import { jobQueue } from './job-queue.ts';
import { yieldToEventLoop } from '../util/yield.ts';

export interface WorkerOptions {
  connectionString: string;
  /** The reader role's connection string: training views are read there (docs/security.md). */
  readerConnectionString: string;
  concurrency?: number;
  leaseSeconds?: number; // a job whose heartbeats stop is taken over after this long
  pollIntervalMs?: number; // backstop when a NOTIFY is missed
  statementTimeoutMs?: number; // for the user's training query
  readerWorkMemMb?: number; // work_mem of the reader sessions (see TrainingSource.workMemMb)
  maxMemoryMb?: number; // a training set needing more is refused with a message
  id?: string;
}

interface Running {
  job: ClaimedJob;
  adopted: Set<string>; // other jobs whose lease this one keeps alive
  cancelled: boolean;
  cancelLoad: (() => Promise<void>) | null; // cancels the reader session's query while one runs
  stopping: boolean;
  leaseLost: boolean;
  progress: Record<string, unknown> | null;
  published: { phase: unknown; at: number; writing: boolean }; // the last progress written to ml.jobs
  clock: PhaseClock;
}

/** Progress is written at each new phase and at most this often within one. */
const PROGRESS_EVERY_MS = 1000;

/** Seconds spent per progress phase (loading is everything before the first named phase). */
class PhaseClock {
  private readonly started = performance.now();
  private phase = 'load';
  private since = this.started;
  readonly seconds: Record<string, number> = {};
  enter(phase: unknown): void {
    if (typeof phase !== 'string' || phase === this.phase) return;
    this.stop();
    this.phase = phase;
  }
  stop(): Record<string, number> {
    const now = performance.now();
    this.seconds[this.phase] = Math.round(((this.seconds[this.phase] ?? 0) + (now - this.since) / 1000) * 1000) / 1000;
    this.since = now;
    return this.seconds;
  }
  total(): number {
    return Math.round(performance.now() - this.started) / 1000;
  }
}

/**
 * The sidecar: wakes on NOTIFY ml_jobs (plus a polling backstop and a catch-up claim after
 * every reconnect), claims jobs with SKIP LOCKED, keeps their lease alive with heartbeats, runs
 * them and records the outcome. stop() lets running jobs reach an iteration boundary, releases
 * them to the queue and returns.
 */
export class Worker {
  readonly id: string;
  private readonly concurrency: number;
  private readonly leaseSeconds: number;
  private readonly pollIntervalMs: number;
  private readonly statementTimeoutMs: number;
  private readonly readerWorkMemMb: number;
  private readonly maxBytes: number;
  private readonly readerUrl: string;
  private readonly running = new Map<string, Running>();
  private readonly finished = new Set<Promise<void>>();
  private listener: Listener | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private claiming = false;
  private wakeAgain = false;
  private stopping = false;
  private apiSchema = 'public';
  /** Jobs this worker finished, by outcome (for tests and logs). */
  readonly counts = { ready: 0, failed: 0, retried: 0, cancelled: 0, released: 0 };

  constructor(private readonly pool: Pool, opts: WorkerOptions) {
    this.id = opts.id ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.leaseSeconds = opts.leaseSeconds ?? 30;
    this.pollIntervalMs = opts.pollIntervalMs ?? 2000;
    this.statementTimeoutMs = opts.statementTimeoutMs ?? 15 * 60 * 1000;
    this.readerWorkMemMb = opts.readerWorkMemMb ?? 256;
    this.maxBytes = (opts.maxMemoryMb ?? 4096) * 2 ** 20;
    this.readerUrl = opts.readerConnectionString;
    this.listener = new Listener({
      connectionString: opts.connectionString,
      channels: ['ml_jobs', 'ml_cancel'],
      onNotification: (channel, payload) => this.onNotification(channel, payload),
      onConnected: () => this.wake(),
    });
  }

  async start(): Promise<void> {
    ({ apiSchema: this.apiSchema } = await checkSchema(this.pool));
    await checkReader(this.pool, this.readerUrl);
    await this.listener!.start();
    this.pollTimer = setInterval(() => this.wake(), this.pollIntervalMs);
    this.heartbeatTimer = setInterval(() => void this.heartbeatAll(), Math.max(200, (this.leaseSeconds * 1000) / 3));
    log.info('sidecar started', { worker: this.id, concurrency: this.concurrency, lease_seconds: this.leaseSeconds });
    this.wake();
  }

  /** Finish or release running jobs, then close connections owned by the worker. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    for (const r of this.running.values()) r.stopping = true;
    await this.listener?.close();
    await Promise.allSettled([...this.finished]);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    log.info('sidecar stopped', { worker: this.id, ...this.counts });
  }

  private onNotification(channel: string, payload: string): void {
    if (channel === 'ml_cancel') {
      // Anyone may NOTIFY any channel: the notification is a hint, the row decides.
      const r = this.running.get(payload);
      if (r) void this.confirmCancel(r);
      return;
    }
    this.wake();
  }

  private async confirmCancel(r: Running): Promise<void> {
    try {
      const { rows } = await this.pool.query<{ c: boolean }>('SELECT cancel_requested AS c FROM ml.jobs WHERE id = $1', [r.job.id]);
      if (rows[0]?.c) this.cancel(r);
    } catch (err) {
      log.warn('could not check a cancel request', { job: r.job.id, error: messageOf(err) });
    }
  }

  /** ml_cancel: stop between iterations, and interrupt a load now (a slow query must not hold the job). */
  private cancel(r: Running): void {
    if (r.cancelled) return;
    r.cancelled = true;
    r.cancelLoad?.().catch((err) => log.warn('could not cancel the reading query', { job: r.job.id, error: messageOf(err) }));
  }

  /** Claims jobs until the concurrency limit is reached or the queue is empty. */
  wake(): void {
    if (this.stopping) return;
    if (this.claiming) {
      this.wakeAgain = true;
      return;
    }
    this.claiming = true;
    void (async () => {
      try {
        do {
          this.wakeAgain = false;
          await this.pool.query(SWEEP_EXPIRED);
          while (!this.stopping && this.running.size < this.concurrency) {
            const { rows } = await this.pool.query<ClaimedJob>(CLAIM, [this.id, this.leaseSeconds, null]);
            const job = rows[0];
            if (!job) break;
            this.launch(job);
          }
        } while (this.wakeAgain && !this.stopping && this.running.size < this.concurrency);
      } catch (err) {
        log.warn('claim failed; the poll will retry', { error: messageOf(err) });
      } finally {
        this.claiming = false;
      }
    })();
  }

  private launch(job: ClaimedJob): void {
    const state: Running = { job, adopted: new Set(), cancelled: false, cancelLoad: null, stopping: this.stopping, leaseLost: false,
      progress: job.estimated_rows ? { phase: 'load', rows_expected: Number(job.estimated_rows) } : { phase: 'load' },
      published: { phase: null, at: 0, writing: false }, clock: new PhaseClock() };
    this.running.set(job.id, state);
    this.publishProgress(state);
    log.info('job claimed', { job: job.id, kind: job.kind, attempt: job.attempts });
    const p = this.execute(state).finally(() => {
      this.running.delete(job.id);
      this.finished.delete(p);
      this.wake();
    });
    this.finished.add(p);
  }

  private async execute(state: Running): Promise<void> {
    const { job } = state;
    const ctx: JobContext = {
      pool: this.pool,
      job,
      source: {
        main: this.pool,
        readerUrl: this.readerUrl,
        fn: job.query_function ?? '',
        token: job.query_token ?? '',
        estimatedRows: job.estimated_rows ?? 0,
        workMemMb: this.readerWorkMemMb,
        role: job.requested_by,
        onReading: (cancel) => {
          state.cancelLoad = cancel;
          if (state.cancelled) void cancel().catch(() => undefined);
          return () => {
            state.cancelLoad = null;
          };
        },
      },
      queue: jobQueue(this.pool, this.id, this.leaseSeconds),
      apiSchema: this.apiSchema,
      statementTimeoutMs: this.statementTimeoutMs,
      maxBytes: this.maxBytes,
      checkpoint: async (progress) => {
        state.progress = progress;
        state.clock.enter(progress.phase);
        this.publishProgress(state);
        // Let timers (heartbeats) and notifications (cancel) run between iterations.
        await yieldToEventLoop();
        if (state.leaseLost) throw new LeaseLost(job.id);
        if (state.cancelled) throw new JobCancelled();
        if (state.stopping) throw new WorkerStopping();
      },
      report: (progress) => {
        state.progress = progress;
        this.publishProgress(state);
      },
      adopt: (jobId) => {
        state.adopted.add(jobId);
        return () => state.adopted.delete(jobId);
      },
    };
    // The longest event-loop stall while this job ran (heartbeats, progress and other jobs wait
    // that long): logged with the outcome, measured in bench/stalls.ts.
    const stalls = monitorEventLoopDelay({ resolution: 10 });
    stalls.enable();
    try {
      await runJob(ctx);
      this.counts.ready++;
      const phases = state.clock.stop();
      log.info('job ready', { job: job.id, kind: job.kind, seconds: state.clock.total(), phases, event_loop_max_ms: Math.round(stalls.max / 1e6) });
    } catch (err) {
      await this.settle(state, err).catch((e) => log.error('could not record job outcome', { job: job.id, error: messageOf(e) }));
    } finally {
      stalls.disable();
    }
  }

  private async settle(state: Running, err: unknown): Promise<void> {
    const { job } = state;
    if (err instanceof LeaseLost) {
      log.warn('lease lost; another sidecar owns the job now', { job: job.id });
      return;
    }
    if (err instanceof JobCancelled || (state.cancelled && !(err instanceof WorkerStopping))) {
      await this.pool.query(CANCELLED, [job.id, this.id]);
      await this.pool.query(CANCEL_CHILDREN, [job.id]);
      this.counts.cancelled++;
      log.info('job cancelled', { job: job.id });
      return;
    }
    if (err instanceof WorkerStopping) {
      await this.pool.query(RELEASE, [job.id, this.id]);
      this.counts.released++;
      log.info('job released for another sidecar', { job: job.id });
      return;
    }
    const message = messageOf(err);
    if (isTransient(err) && job.attempts < job.max_attempts) {
      const delay = backoffMs(job.attempts, 30_000) / 1000;
      await this.pool.query(RETRY, [job.id, this.id, message, delay]);
      this.counts.retried++;
      log.warn('job hit a transient error; retrying', { job: job.id, error: message, in_s: delay });
      return;
    }
    await this.pool.query(FAIL, [job.id, this.id, message]);
    await this.pool.query(CANCEL_CHILDREN, [job.id]);
    this.counts.failed++;
    log.warn('job failed', { job: job.id, error: message });
  }

  /** Writes the job's progress if its phase changed or a second has passed; one write at a time. */
  private publishProgress(state: Running): void {
    const p = state.published;
    const phase = state.progress?.phase;
    if (p.writing || (phase === p.phase && performance.now() - p.at < PROGRESS_EVERY_MS)) return;
    Object.assign(p, { phase, at: performance.now(), writing: true });
    this.pool
      .query(PROGRESS, [state.job.id, this.id, JSON.stringify(state.progress)])
      .catch((err) => log.warn('progress write failed', { job: state.job.id, error: messageOf(err) }))
      .finally(() => {
        p.writing = false;
        if (state.progress?.phase !== p.phase && this.running.has(state.job.id)) this.publishProgress(state);
      });
  }

  private async heartbeatAll(): Promise<void> {
    for (const state of this.running.values()) {
      try {
        const { rows } = await this.pool.query<{ cancel_requested: boolean }>(HEARTBEAT, [
          state.job.id,
          this.id,
          this.leaseSeconds,
          state.progress ? JSON.stringify(state.progress) : null,
        ]);
        if (!rows[0]) state.leaseLost = true;
        else if (rows[0].cancel_requested) this.cancel(state);
        for (const child of state.adopted) await this.pool.query(HEARTBEAT, [child, this.id, this.leaseSeconds, null]);
      } catch (err) {
        log.warn('heartbeat failed', { job: state.job.id, error: messageOf(err) });
      }
    }
  }
}
