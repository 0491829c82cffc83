import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, rows, type TestDb } from './helpers.ts';
import type { Worker } from '../src/queue/worker.ts';

let t: TestDb;
let a: Worker;
let b: Worker;
beforeAll(async () => {
  t = await freshDatabase('queue', { demo: true });
  a = await t.worker({ id: 'sidecar-a' });
  b = await t.worker({ id: 'sidecar-b' });
});
afterAll(async () => t?.close());

async function waitAll(jobs: string[]): Promise<void> {
  for (const j of jobs) await t.pool.query('SELECT ml_wait($1)', [j]).catch(() => undefined);
}

describe('the job queue', () => {
  it('two sidecars, 50 jobs enqueued in one transaction: each is trained exactly once', async () => {
    const jobs = await rows<{ job: string }>(
      t.pool,
      `SELECT ml_create_model('q' || i, 'kmeans', 'SELECT frequency, monetary FROM demo.customer_features', '{"num_clusters": 3, "seed": 1, "n_init": 1}') AS job
         FROM generate_series(1, 50) i`,
    );
    await waitAll(jobs.map((j) => j.job));
    const done = await rows<{ status: string; attempts: number; runs: number; worker: string }>(
      t.pool,
      `SELECT status, attempts, jsonb_array_length(history) AS runs, history->0->>'worker' AS worker FROM ml.jobs WHERE id = ANY($1::bigint[])`,
      [jobs.map((j) => j.job)],
    );
    expect(done).toHaveLength(50);
    expect(done.every((d) => d.status === 'ready' && d.attempts === 1 && d.runs === 1)).toBe(true);
    expect(a.counts.ready + b.counts.ready).toBe(50);
    const byWorker = new Set(done.map((d) => d.worker));
    expect([...byWorker].every((w) => w === 'sidecar-a' || w === 'sidecar-b')).toBe(true);
    const [models] = await rows<{ n: string }>(t.pool, `SELECT count(*) AS n FROM ml.models WHERE model_name LIKE 'q%' AND trained_at IS NOT NULL`);
    expect(Number(models!.n)).toBe(50);
  });

  it('a job whose sidecar stopped heartbeating is taken over after its lease expires; the dead attempt stays in its history', async () => {
    const [{ job }] = (await rows<{ job: string }>(
      t.pool,
      `SELECT ml_create_model('orphan', 'kmeans', 'SELECT frequency, monetary FROM demo.customer_features', '{"num_clusters": 2, "seed": 1}') AS job`,
    )) as [{ job: string }];
    // A sidecar that claimed the job and died: its lease ran out a moment ago.
    await t.pool.query(
      `UPDATE ml.jobs SET status = 'training', locked_by = 'dead-sidecar', attempts = 1, lease_expires_at = now() - interval '1 second',
              history = '[{"attempt": 1, "worker": "dead-sidecar", "started_at": "2026-01-01T00:00:00Z"}]' WHERE id = $1`,
      [job],
    );
    await t.pool.query('SELECT ml_wait($1)', [job]);
    const [j] = await rows<{ status: string; attempts: number; history: { worker: string; outcome: string }[] }>(
      t.pool,
      'SELECT status, attempts, history FROM ml.jobs WHERE id = $1',
      [job],
    );
    expect(j!.status).toBe('ready');
    expect(j!.attempts).toBe(2);
    expect(j!.history.map((h) => [h.worker, h.outcome])).toEqual([
      ['dead-sidecar', 'lease expired'],
      [expect.stringMatching(/^sidecar-[ab]$/), 'ready'],
    ]);
    const [v] = await rows<{ n: string }>(t.pool, `SELECT count(*) AS n FROM ml_models WHERE model_name = 'orphan'`);
    expect(Number(v!.n)).toBe(1);
  });

  it('ml_cancel stops a running training between iterations', async () => {
    const [{ job }] = (await rows<{ job: string }>(
      t.pool,
      `SELECT ml_create_model('long', 'kmeans',
         'SELECT random() AS a, random() AS b, random() AS c, random() AS d FROM generate_series(1, 200000)',
         '{"num_clusters": 60, "n_init": 50, "seed": 1}') AS job`,
    )) as [{ job: string }];
    for (let i = 0; i < 200; i++) {
      const [s] = await rows<{ status: string }>(t.pool, 'SELECT status FROM ml_jobs WHERE id = $1', [job]);
      if (s!.status === 'training') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const [c] = await rows<{ ok: boolean }>(t.pool, 'SELECT ml_cancel($1) AS ok', [job]);
    expect(c!.ok).toBe(true);
    const started = Date.now();
    const err = await t.pool.query('SELECT ml_wait($1)', [job]).catch((e: Error) => e);
    expect(String(err)).toMatch(new RegExp(`job ${job} was cancelled`));
    expect(Date.now() - started).toBeLessThan(10_000);
    const [after] = await rows<{ ok: boolean }>(t.pool, 'SELECT ml_cancel($1) AS ok', [job]);
    expect(after!.ok).toBe(false); // already ended
  });

  it('a queued job is cancelled at once', async () => {
    const c = await t.pool.connect();
    try {
      await c.query('BEGIN');
      const { rows: r } = await c.query(`SELECT ml_create_model('never', 'kmeans', 'SELECT 1 AS x', '{}') AS job`);
      const job = r[0].job as string;
      await c.query('SELECT ml_cancel($1)', [job]);
      await c.query('COMMIT');
      const [s] = await rows<{ status: string }>(t.pool, 'SELECT status FROM ml_jobs WHERE id = $1', [job]);
      expect(s!.status).toBe('cancelled');
    } finally {
      c.release();
    }
  });
});
