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

  it('a query the requester may not read is refused by PostgreSQL at enqueue time, as the requester', async () => {
    const err = await as(alice, `SELECT ml_create_model('peek', 'kmeans', 'SELECT * FROM public.secret', '{}') AS job`).catch((e: Error) => e);
    expect(String(err)).toMatch(/permission denied for table secret/);
    expect(await rows(t.pool, `SELECT 1 FROM ml.models WHERE model_name = 'peek'`)).toEqual([]);
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

describe('sharing, row-level security and injection', () => {
  it('row-level security on the training table applies: a model sees only the requester\u2019s rows', async () => {
    await t.pool.query(`CREATE TABLE public.tenant_data (owner_name name, x float8, y float8)`);
    await t.pool.query(
      `INSERT INTO public.tenant_data SELECT CASE WHEN i % 4 = 0 THEN '${alice}' ELSE 'someone_else' END, random(), random() FROM generate_series(1, 1000) i`,
    );
    await t.pool.query(`ALTER TABLE public.tenant_data ENABLE ROW LEVEL SECURITY`);
    await t.pool.query(`CREATE POLICY mine ON public.tenant_data USING (owner_name = current_user)`);
    await t.pool.query(`GRANT SELECT ON public.tenant_data TO PUBLIC`);
    const [{ job }] = (await as<{ job: string }>(alice, `SELECT ml_create_model('rls_seg', 'kmeans', 'SELECT x, y FROM public.tenant_data', '{"num_clusters": 2}') AS job`)) as [{ job: string }];
    await as(alice, `SELECT ml_wait(${job})`);
    const [m] = await as<{ rows: number }>(alice, `SELECT (metrics->>'rows')::int AS rows FROM ml_models WHERE model_name = 'rls_seg'`);
    expect(m!.rows).toBe(250);
  });

  it('ml_grant lets another role read and score with a model, not drop it; ml_revoke takes it back', async () => {
    await as(alice, `SELECT ml_grant('alice_seg', '${bob}')`);
    const models = await as<{ model_name: string; state: string }>(bob, `SELECT model_name, state FROM ml_models`);
    expect(models).toEqual([{ model_name: 'alice_seg', state: 'ready' }]);
    const [p] = await as<{ n: string }>(bob, `SELECT count(*) AS n FROM ml_predict('alice_seg', 'SELECT frequency, monetary FROM demo.customer_features')`);
    expect(Number(p!.n)).toBe(793);
    const [f] = await as<{ c: number }>(bob, `SELECT alice_seg_predict(3, 100) AS c`);
    expect(f!.c).toBeGreaterThanOrEqual(1);
    expect(String(await as(bob, `SELECT ml_drop_model('alice_seg')`).catch((e) => e))).toMatch(/model "alice_seg" does not exist/);
    expect(String(await as(bob, `SELECT ml_grant('alice_seg', '${bob}')`).catch((e) => e))).toMatch(/is not yours to share/);
    const [r] = await as<{ ok: boolean }>(alice, `SELECT ml_revoke('alice_seg', '${bob}') AS ok`);
    expect(r!.ok).toBe(true);
    expect(await as(bob, `SELECT model_name FROM ml_models`)).toEqual([]);
    expect(String(await as(bob, `SELECT alice_seg_predict(3, 100)`).catch((e) => e))).toMatch(/permission denied for function alice_seg_predict/);
  });

  it('injection through option values, feature names and category values changes nothing', async () => {
    await t.pool.query(`CREATE TABLE public.evil ("a""); DROP TABLE demo.orders; --" float8, cat text)`);
    await t.pool.query(`INSERT INTO public.evil SELECT random(), CASE WHEN i % 2 = 0 THEN $$'); DROP TABLE demo.orders; --$$ ELSE 'plain' END FROM generate_series(1, 100) i`);
    const bad = (await rows<{ job: string }>(t.pool, `SELECT ml_create_model('evil1', 'kmeans', 'SELECT * FROM public.evil', $1::jsonb) AS job`, [
      JSON.stringify({ exclude: ['x"); DROP TABLE demo.orders; --'] }),
    ]))[0]!.job;
    expect(String(await t.pool.query('SELECT ml_wait($1)', [bad]).catch((e) => e))).toMatch(/listed in "exclude" is not in the training query/);
    await t.pool.query(`CALL ml_train('evil2', 'kmeans', 'SELECT * FROM public.evil', '{"num_clusters": 2}')`);
    const [s] = await rows<{ n: string }>(
      t.pool,
      `SELECT count(DISTINCT evil2_predict(e."a""); DROP TABLE demo.orders; --", e.cat)) AS n FROM public.evil e`,
    );
    expect(Number(s!.n)).toBeGreaterThanOrEqual(1);
    const [c] = await rows<{ categories: { category: string }[] }>(t.pool, `SELECT categorical_value AS categories FROM ml_centroids('evil2') WHERE feature = 'cat' LIMIT 1`);
    expect(c!.categories.map((x) => x.category).sort()).toEqual([`'); DROP TABLE demo.orders; --`, 'plain']);
    const [o] = await rows<{ n: string }>(t.pool, 'SELECT count(*) AS n FROM demo.orders');
    expect(Number(o!.n)).toBe(9994);
  });
});

describe('set-up: install names what is missing; doctor reports what the set-up exposes', () => {
  it('install without CREATE on the database, or without a reader role, prints the exact statements to run', async () => {
    const { makePool } = await import('../src/db/connect.ts');
    const { install, MissingRights } = await import('../src/db/migrate.ts');
    const { withUser } = await import('../src/db/roles.ts');
    const db = `t_noright_${suffix}`;
    await t.pool.query(`CREATE ROLE weak_${suffix} LOGIN PASSWORD 'pw'`);
    await t.pool.query(`CREATE DATABASE ${db}`);
    const u = new URL(withUser(t.url, `weak_${suffix}`, 'pw'));
    u.pathname = `/${db}`;
    const pool = makePool(u.toString(), 1);
    try {
      const err = await install(pool).catch((e: Error) => e);
      expect(err).toBeInstanceOf(MissingRights);
      expect(String(err)).toMatch(new RegExp(`GRANT CREATE ON DATABASE "${db}" TO "weak_${suffix}";`));
      expect(String(err)).toMatch(new RegExp(`GRANT USAGE, CREATE ON SCHEMA "public" TO "weak_${suffix}";`));
      const err2 = await install(pool, 'public', { readerRole: `nobody_${suffix}` }).catch((e: Error) => e);
      expect(String(err2)).toMatch(new RegExp(`CREATE ROLE "nobody_${suffix}" LOGIN NOINHERIT PASSWORD`));
      expect((await pool.query(`SELECT to_regnamespace('ml') AS ml`)).rows[0].ml).toBeNull();
    } finally {
      await pool.end();
    }
  });

  it('doctor: nothing fails on the tested set-up; a write grant on ml.* or a reader with rights fails', async () => {
    const { makePool } = await import('../src/db/connect.ts');
    const { doctor } = await import('../src/db/roles.ts');
    const pool = makePool(t.roles.sidecarUrl, 1, { pinned: true });
    try {
      const clean = await doctor(pool, t.roles.readerUrl);
      expect(clean.filter((f) => f.level === 'fail')).toEqual([]);
      expect(clean.map((f) => f.what).join('\n')).toMatch(/reader role "ml_reader" exists, is a member of no role and owns nothing/);
      await t.pool.query(`GRANT INSERT ON ml.models TO PUBLIC; GRANT ${alice} TO ml_reader`);
      try {
        const bad = (await doctor(pool, t.roles.readerUrl)).filter((f) => f.level === 'fail').map((f) => f.what);
        expect(bad.join('\n')).toMatch(/PUBLIC may write ml tables: models \(INSERT\)/);
        expect(bad.join('\n')).toMatch(new RegExp(`it is a member of ${alice}`));
      } finally {
        await t.pool.query(`REVOKE INSERT ON ml.models FROM PUBLIC; REVOKE ${alice} FROM ml_reader`);
      }
    } finally {
      await pool.end();
    }
  });
});
