import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, rows, type TestDb } from './helpers.ts';
import { sidecar, sleep, type Child } from './processes.ts';

// Faults, with sidecars as real child processes.

let t: TestDb;
const children: Child[] = [];
beforeAll(async () => {
  t = await freshDatabase('reliability', { demo: true });
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await t?.close();
});

async function start(...args: string[]): Promise<Child> {
  const c = await sidecar(t.roles, ...args);
  children.push(c);
  return c;
}

// Uniform noise, many clusters and restarts: iterations are short, the whole run is long;
// max_runtime ends it once a sidecar has trained for that long.
const LONG = `SELECT random() AS a, random() AS b, random() AS c, random() AS d FROM generate_series(1, 100000)`;
const enqueueLong = async (name: string, maxRuntime: number) =>
  (
    await rows<{ job: string }>(t.pool, `SELECT ml_create_model($1, 'kmeans', $2, $3::jsonb) AS job`, [
      name,
      LONG,
      JSON.stringify({ num_clusters: 40, n_init: 100, seed: 1, max_runtime: maxRuntime }),
    ])
  )[0]!.job;

async function waitStatus(job: string, status: string, ms = 30_000): Promise<{ locked_by: string | null }> {
  const until = Date.now() + ms;
  for (;;) {
    const [j] = await rows<{ status: string; locked_by: string | null }>(t.pool, 'SELECT status, locked_by FROM ml.jobs WHERE id = $1', [job]);
    if (j!.status === status) return j!;
    if (Date.now() > until) throw new Error(`job ${job} is ${j!.status}, not ${status}`);
    await sleep(50);
  }
}

describe('faults', () => {
  it('a sidecar killed with SIGKILL mid-training: another takes the job over after the lease; one version, the dead attempt in the history', async () => {
    const a = await start('--lease-seconds', '3');
    const job = await enqueueLong('killed', 6);
    await waitStatus(job, 'training');
    await sleep(1000);
    a.kill('SIGKILL');
    await a.exited();
    const b = await start('--lease-seconds', '3');
    await t.pool.query('SELECT ml_wait($1)', [job]);
    const [j] = await rows<{ status: string; attempts: number; history: { worker: string; outcome: string }[] }>(
      t.pool,
      'SELECT status, attempts, history FROM ml.jobs WHERE id = $1',
      [job],
    );
    expect(j!.status).toBe('ready');
    expect(j!.attempts).toBe(2);
    expect(j!.history.map((h) => h.outcome)).toEqual(['lease expired', 'ready']);
    expect(j!.history[0]!.worker).not.toBe(j!.history[1]!.worker);
    const [v] = await rows<{ n: string }>(t.pool, `SELECT count(*) AS n FROM ml_models WHERE model_name = 'killed'`);
    expect(Number(v!.n)).toBe(1);
    const [m] = await rows<{ stopped: boolean }>(t.pool, `SELECT (metrics->>'stopped_by_max_runtime')::boolean AS stopped FROM ml_models WHERE model_name = 'killed'`);
    expect(m!.stopped).toBe(true); // max_runtime kept the best model found in 6 s
    b.kill('SIGTERM');
    expect(await b.exited()).toBe(0);
  });

  it('SIGTERM lets the iteration finish, releases the job for another sidecar and exits 0', async () => {
    const a = await start();
    const job = await enqueueLong('released', 10);
    await waitStatus(job, 'training');
    await sleep(500);
    const t0 = Date.now();
    a.kill('SIGTERM');
    expect(await a.exited()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    await waitStatus(job, 'queued');
    const b = await start();
    await t.pool.query('SELECT ml_wait($1)', [job]);
    const [j] = await rows<{ attempts: number; history: { outcome: string }[] }>(t.pool, 'SELECT attempts, history FROM ml.jobs WHERE id = $1', [job]);
    expect(j!.history.map((h) => h.outcome)).toEqual(['released', 'ready']);
    expect(j!.attempts).toBe(1); // a released attempt does not count against max_attempts
    b.kill('SIGTERM');
    expect(await b.exited()).toBe(0);
  });

  it('a transient error (serialization failure) is retried with backoff; the job then succeeds', async () => {
    await t.pool.query(`
      CREATE FUNCTION public.flaky(m text) RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN
        IF (SELECT attempts FROM ml_jobs WHERE model_name = m ORDER BY id DESC LIMIT 1) < 2 THEN
          RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'could not serialize access (simulated)';
        END IF;
        RETURN true;
      END $$`);
    const s = await start();
    const [{ job }] = (await rows<{ job: string }>(
      t.pool,
      `SELECT ml_create_model('flaky1', 'kmeans', $$SELECT frequency, monetary FROM demo.customer_features WHERE flaky('flaky1')$$, '{"num_clusters": 2}') AS job`,
    )) as [{ job: string }];
    await t.pool.query('SELECT ml_wait($1)', [job]);
    const [j] = await rows<{ attempts: number; history: { outcome: string; error: string | null }[] }>(t.pool, 'SELECT attempts, history FROM ml.jobs WHERE id = $1', [job]);
    expect(j!.attempts).toBe(2);
    expect(j!.history.map((h) => h.outcome)).toEqual(['retry', 'ready']);
    expect(j!.history[0]!.error).toMatch(/could not serialize access/);
    s.kill('SIGTERM');
    await s.exited();
  });

  it('a training set over the memory budget (--max-memory) is refused with a message naming the budget and the size', async () => {
    const s = await start('--max-memory', '1');
    const [{ job }] = (await rows<{ job: string }>(
      t.pool,
      `SELECT ml_create_model('big', 'kmeans', 'SELECT random() AS a, random() AS b FROM generate_series(1, 200000)', '{"num_clusters": 2, "training_mode": "in_memory"}') AS job`,
    )) as [{ job: string }];
    const err = await t.pool.query('SELECT ml_wait($1)', [job]).catch((e: Error) => e);
    expect(String(err)).toMatch(/the training data needs more than \d+ MB \(\d+ rows read so far\), over the sidecar's memory budget of 1 MB \(--max-memory\)/);
    // (without "training_mode" such a k-means request trains in the database: test/shards.test.ts)
    // ... and it keeps serving.
    await t.pool.query(`CALL ml_train('small', 'kmeans', 'SELECT frequency FROM demo.customer_features', '{"num_clusters": 2}')`);
    s.kill('SIGTERM');
    await s.exited();
  });

  it('4 sidecars, 1,000 jobs enqueued in one transaction: every job done exactly once, none lost, none stuck', async () => {
    const sidecars = await Promise.all([start(), start(), start(), start()]);
    const jobs = await rows<{ job: string }>(
      t.pool,
      `SELECT ml_create_model('many' || i, 'kmeans', 'SELECT x::float8 AS x FROM generate_series(1, 20) x', '{"num_clusters": 2, "n_init": 1, "seed": 1}') AS job
         FROM generate_series(1, 1000) i`,
    );
    const until = Date.now() + 240_000;
    for (;;) {
      const [r] = await rows<{ open: string }>(t.pool, `SELECT count(*) AS open FROM ml.jobs WHERE id = ANY($1::bigint[]) AND status NOT IN ('ready', 'failed', 'cancelled')`, [jobs.map((j) => j.job)]);
      if (Number(r!.open) === 0 || Date.now() > until) break;
      await sleep(250);
    }
    const [r] = await rows<{ ready: string; once: string; workers: string }>(
      t.pool,
      `SELECT count(*) FILTER (WHERE status = 'ready') AS ready,
              count(*) FILTER (WHERE attempts = 1 AND jsonb_array_length(history) = 1) AS once,
              count(DISTINCT history->0->>'worker') AS workers
         FROM ml.jobs WHERE id = ANY($1::bigint[])`,
      [jobs.map((j) => j.job)],
    );
    expect(Number(r!.ready)).toBe(1000);
    expect(Number(r!.once)).toBe(1000);
    expect(Number(r!.workers)).toBeGreaterThanOrEqual(2);
    for (const s of sidecars) s.kill('SIGTERM');
    for (const s of sidecars) expect(await s.exited()).toBe(0);
  });
});
