import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, rows, type TestDb } from './helpers.ts';

let t: TestDb;
const suffix = randomBytes(3).toString('hex');
const alice = `alice_${suffix}`;
const bob = `bob_${suffix}`;

beforeAll(async () => {
  t = await freshDatabase('security', { demo: true });
  await t.worker();
  for (const r of [alice, bob]) await t.pool.query(`CREATE ROLE ${r} LOGIN`);
  await t.pool.query(`CREATE TABLE public.secret AS SELECT frequency, monetary FROM demo.customer_features`);
  await t.pool.query(`REVOKE ALL ON public.secret FROM PUBLIC`);
});
afterAll(async () => {
  await t?.close();
});

/** Runs statements as `role` on one connection (SET ROLE), returning the last result's rows. */
async function as<T = Record<string, unknown>>(role: string, ...statements: string[]): Promise<T[]> {
  const c = await t.pool.connect();
  try {
    await c.query(`SET ROLE ${role}`);
    let last: T[] = [];
    for (const s of statements) last = (await c.query(s)).rows as T[];
    return last;
  } finally {
    await c.query('RESET ROLE').catch(() => undefined);
    c.release();
  }
}

describe('security', () => {
  it('an ordinary login role can use the API', async () => {
    const [{ job }] = (await as<{ job: string }>(alice, `SELECT ml_create_model('alice_seg', 'kmeans', 'SELECT frequency, monetary FROM demo.customer_features', '{"num_clusters": 3, "seed": 1}') AS job`)) as [{ job: string }];
    await as(alice, `SELECT ml_wait(${job})`);
    const ev = await as<{ davies_bouldin_index: number }>(alice, `SELECT * FROM ml_evaluate('alice_seg')`);
    expect(ev[0]!.davies_bouldin_index).toBeGreaterThan(0);
    const p = await as<{ n: string }>(alice, `SELECT count(alice_seg_predict(frequency, monetary)) AS n FROM demo.customer_features`);
    expect(Number(p[0]!.n)).toBe(793);
  });

  it('a job whose query the requester may not read fails with "permission denied", not with the sidecar\u2019s rights', async () => {
    const [{ job }] = (await as<{ job: string }>(alice, `SELECT ml_create_model('peek', 'kmeans', 'SELECT * FROM public.secret', '{}') AS job`)) as [{ job: string }];
    const err = await as(alice, `SELECT ml_wait(${job})`).catch((e: Error) => e);
    expect(String(err)).toMatch(/permission denied for table secret/);
    const [j] = await rows<{ status: string; attempts: number }>(t.pool, 'SELECT status, attempts FROM ml.jobs WHERE id = $1', [job]);
    expect(j).toEqual({ status: 'failed', attempts: 1 });
  });

  it('other roles see neither the model, its metrics, nor its scoring function', async () => {
    const models = await as<{ model_name: string }>(bob, `SELECT model_name FROM ml_models`);
    expect(models).toEqual([]);
    const jobs = await as(bob, `SELECT * FROM ml_jobs`);
    expect(jobs).toEqual([]);
    expect(String(await as(bob, `SELECT * FROM ml_evaluate('alice_seg')`).catch((e) => e))).toMatch(/model "alice_seg" does not exist/);
    expect(String(await as(bob, `SELECT * FROM ml.centroids`).then((r) => r.length))).toBe('0');
    expect(String(await as(bob, `SELECT alice_seg_predict(1, 2)`).catch((e) => e))).toMatch(/permission denied for function alice_seg_predict/);
    expect(String(await as(bob, `SELECT ml_drop_model('alice_seg')`).catch((e) => e))).toMatch(/model "alice_seg" does not exist/);
    expect(String(await as(bob, `SELECT ml_create_model('alice_seg', 'kmeans', 'SELECT 1 AS x')`).catch((e) => e))).toMatch(
      new RegExp(`model name "alice_seg" is taken by role "${alice}"`),
    );
  });

  it('ml_wait inside the enqueuing transaction raises "commit first" instead of hanging', async () => {
    const c = await t.pool.connect();
    try {
      await c.query('BEGIN');
      const { rows: r } = await c.query(`SELECT ml_create_model('txn', 'kmeans', 'SELECT frequency FROM demo.customer_features', '{}') AS job`);
      const err = await c.query('SELECT ml_wait($1)', [r[0].job]).catch((e: Error) => e);
      expect(String(err)).toMatch(/was enqueued in this transaction: commit first/);
    } finally {
      await c.query('ROLLBACK');
      c.release();
    }
  });
});
