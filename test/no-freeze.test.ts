import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDb } from './helpers.ts';

// A long HDBSCAN fit runs on a worker thread: the sidecar keeps serving other jobs and honours
// ml_cancel within about a second while it trains (it used to hold the event loop for the whole
// fit: docs/performance.md, event-loop stalls), and a second sidecar never takes over a fit that
// outlasts the lease (2 s here, so that a fit of a few seconds does: the thread's work keeps the
// heartbeats going).

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('nofreeze');
  await t.worker({ concurrency: 2, leaseSeconds: 2 });
  await t.pool.query(`SELECT setseed(0.2)`);
  await t.pool.query(`CREATE TABLE blobs AS
    SELECT (g % 5) + random() * 0.3 AS a, (g % 5) * 0.5 + random() * 0.3 AS b, (g % 3) + random() * 0.3 AS c
      FROM generate_series(1, 20000) g`);
});
afterAll(async () => t?.close());

const DENSITY = `'hdbscan', 'SELECT * FROM blobs', '{"min_cluster_size": 50}'`;

async function status(job: string): Promise<{ status: string; phase: string | null }> {
  const r = await t.pool.query(`SELECT status, progress->>'phase' AS phase FROM ml_jobs WHERE id = $1`, [job]);
  return r.rows[0];
}

async function until(job: string, ok: (s: { status: string; phase: string | null }) => boolean, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await status(job);
    if (ok(s)) return s;
    if (Date.now() > deadline) throw new Error(`job ${job} still ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('no job freezes the sidecar', () => {
  it('a small k-means job finishes while HDBSCAN trains on the same sidecar', async () => {
    const big = String((await t.pool.query(`SELECT ml_create_model('dense', ${DENSITY}) AS id`)).rows[0].id);
    await until(big, (s) => s.phase === 'core distances' || !!s.phase?.startsWith('spanning tree'));
    const small = String((await t.pool.query(`SELECT ml_create_model('quick', 'kmeans', 'SELECT a, b FROM blobs LIMIT 500', '{"num_clusters": 3}') AS id`)).rows[0].id);
    await until(small, (s) => s.status === 'ready', 20_000);
    expect((await status(big)).status).toBe('training');
    await until(big, (s) => s.status === 'ready');
  });

  it('ml_cancel stops an HDBSCAN fit within 2 s', async () => {
    const job = String((await t.pool.query(`SELECT ml_create_model('dense2', ${DENSITY}) AS id`)).rows[0].id);
    await until(job, (s) => s.phase === 'core distances' || !!s.phase?.startsWith('spanning tree'));
    const asked = Date.now();
    await t.pool.query('SELECT ml_cancel($1)', [job]);
    await until(job, (s) => s.status === 'cancelled', 10_000);
    expect(Date.now() - asked).toBeLessThan(2000);
  });

  it('two sidecars, HDBSCAN on 160,000 rows, a 2 s lease: trained once, never taken over', async () => {
    await t.worker({ leaseSeconds: 2 }); // a second sidecar, ready to take over a job whose lease expires
    // 160,000 rows of 8 columns: the fit must outlast the lease (80,000 rows of 3 took 2.0 s once the core distances got faster)
    await t.pool.query(`CREATE TABLE blobs160k AS
      SELECT (g % 5) + random() * 0.3 AS a, (g % 5) * 0.5 + random() * 0.3 AS b, (g % 3) + random() * 0.3 AS c,
             (g % 5) * 0.7 + random() * 0.3 AS d, (g % 5) * 0.2 + random() * 0.3 AS e, (g % 3) * 0.6 + random() * 0.3 AS f,
             (g % 5) * 0.4 + random() * 0.3 AS h, (g % 3) * 0.3 + random() * 0.3 AS i
        FROM generate_series(1, 160000) g`);
    const job = String((await t.pool.query(`SELECT ml_create_model('dense160k', 'hdbscan', 'SELECT * FROM blobs160k', '{}') AS id`)).rows[0].id);
    await t.pool.query(`SELECT ml_wait($1, '5 minutes')`, [job]);
    const r = await t.pool.query(`SELECT status, attempts, jsonb_array_length(history) AS runs, extract(epoch FROM finished_at - started_at)::float8 AS seconds FROM ml_jobs WHERE id = $1`, [job]);
    expect(r.rows[0].seconds).toBeGreaterThan(2.5); // longer than the lease
    expect({ ...r.rows[0], seconds: undefined }).toEqual({ status: 'ready', attempts: 1, runs: 1, seconds: undefined });
  }, 360_000);
});
