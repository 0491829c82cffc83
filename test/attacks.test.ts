import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePool, type Pool } from '../src/db/connect.ts';
import { withUser } from '../src/db/roles.ts';
import { freshDatabase, rows, type TestDb } from './helpers.ts';

// Each attack class of docs/security.md, tried by ordinary LOGIN roles over their own
// connections against the least-privilege sidecar (a non-superuser role of its own, reading
// through the reader role). Every test asserts that the attack changed nothing and leaked nothing.

let t: TestDb;
const suffix = randomBytes(3).toString('hex');
const alice = `alice_${suffix}`;
const bob = `bob_${suffix}`;
const SECRET = 'the-launch-code-4711';
let A: Pool; // alice's own connections
let B: Pool; // bob's
let bobJob: string;

beforeAll(async () => {
  t = await freshDatabase('attacks', { demo: true });
  await t.worker({ concurrency: 2 });
  for (const r of [alice, bob]) {
    await t.pool.query(`CREATE ROLE ${r} LOGIN PASSWORD 'pw'`);
    await t.pool.query(`CREATE SCHEMA ${r}_s AUTHORIZATION ${r}`);
  }
  await t.pool.query(`CREATE TABLE public.secret (code text, n int); INSERT INTO public.secret VALUES ('${SECRET}', 1)`);
  await t.pool.query(`CREATE TABLE ${alice}_s.points AS SELECT i::float8 AS x, (i % 7)::float8 AS y FROM generate_series(1, 200) i`);
  await t.pool.query(`ALTER TABLE ${alice}_s.points OWNER TO ${alice}`);
  await t.pool.query(`CREATE TABLE ${bob}_s.points AS SELECT i::float8 AS x, (i % 5)::float8 AS y FROM generate_series(1, 200) i`);
  await t.pool.query(`ALTER TABLE ${bob}_s.points OWNER TO ${bob}`);
  A = makePool(withUser(t.url, alice, 'pw'), 3);
  B = makePool(withUser(t.url, bob, 'pw'), 3);
  bobJob = (await rows<{ job: string }>(B, `SELECT ml_create_model('bob_seg', 'kmeans', 'SELECT x, y FROM ${bob}_s.points', '{"num_clusters": 2, "seed": 1}') AS job`))[0]!.job;
  await B.query('SELECT ml_wait($1)', [bobJob]);
  await B.query(`SELECT ml_grant('bob_seg', '${alice}')`);
});
afterAll(async () => {
  await A?.end();
  await B?.end();
  await t?.close();
});

const fails = async (pool: Pool, sql: string, params: unknown[] = []): Promise<string> => {
  try {
    await pool.query(sql, params);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`expected an error from: ${sql}`);
};

/** Enqueues as alice and waits: the job's error, or 'ready'. */
async function outcome(query: string, options = '{"num_clusters": 2}', name = `m_${randomBytes(3).toString('hex')}`): Promise<string> {
  const [{ job }] = (await rows<{ job: string }>(A, `SELECT ml_create_model($1, 'kmeans', $2, $3::jsonb) AS job`, [name, query, options])) as [{ job: string }];
  const err = await A.query('SELECT ml_wait($1)', [job]).then(() => null, (e: Error) => e.message);
  return err ?? 'ready';
}

const isSuperuser = async (role: string) => (await rows<{ s: boolean }>(t.pool, 'SELECT rolsuper AS s FROM pg_roles WHERE rolname = $1', [role]))[0]!.s;
const tableExists = async (name: string) => (await rows<{ r: string | null }>(t.pool, 'SELECT to_regclass($1)::text AS r', [name]))[0]!.r !== null;

describe('1. a training query is one SELECT, checked by PostgreSQL as the requester', () => {
  const variants = [
    `SELECT x, y FROM ${'ALICE'}_s.points; COMMIT; CREATE TABLE public.loot AS SELECT * FROM public.secret`,
    `SELECT x, y FROM ${'ALICE'}_s.points; CREATE TABLE public.loot AS SELECT 1`,
    `SELECT 1 AS x) q; CREATE TABLE public.loot AS SELECT * FROM public.secret; SELECT * FROM (SELECT 1 AS x`,
    `SELECT 1 AS x /* ; */ ; DROP TABLE demo.orders`,
    `SELECT 1 AS x --\n; CREATE TABLE public.loot (a int)`,
    `INSERT INTO public.secret VALUES ('x', 2) RETURNING n`,
    `WITH d AS (DELETE FROM public.secret RETURNING n) SELECT n FROM d`,
    `SELECT * INTO public.loot FROM public.secret`,
  ];
  for (const v of variants) {
    it(`refused at enqueue, nothing ran: ${JSON.stringify(v.slice(0, 60))}`, async () => {
      const q = v.replaceAll('ALICE', alice);
      const msg = await fails(A, `SELECT ml_create_model('multi', 'kmeans', $1)`, [q]);
      expect(msg).toMatch(/training_query must be|syntax error|permission denied/);
      expect(await tableExists('public.loot')).toBe(false);
      expect(Number((await rows<{ n: string }>(t.pool, 'SELECT count(*) AS n FROM public.secret'))[0]!.n)).toBe(1);
      expect(Number((await rows<{ n: string }>(t.pool, 'SELECT count(*) AS n FROM demo.orders'))[0]!.n)).toBe(9994);
    });
  }
});

describe('2. functions in the query run as the requester, and cannot switch roles', () => {
  const escapes: [string, string][] = [
    ['RESET ROLE', `RESET ROLE; RETURN (SELECT code FROM public.secret LIMIT 1);`],
    ['SET ROLE to the sidecar', `SET ROLE ml_sidecar; RETURN (SELECT code FROM public.secret LIMIT 1);`],
    ['SET ROLE to the reader', `SET ROLE ml_reader; RETURN 'x';`],
    ['set_config(role)', `PERFORM set_config('role', 'ml_sidecar', true); RETURN (SELECT code FROM public.secret LIMIT 1);`],
    ['SET SESSION AUTHORIZATION', `SET SESSION AUTHORIZATION ml_sidecar; RETURN (SELECT code FROM public.secret LIMIT 1);`],
    ['read the secret directly', `RETURN (SELECT code FROM public.secret LIMIT 1);`],
    ['read the reader secrets', `RETURN (SELECT secret FROM ml.readers LIMIT 1);`],
    ['write in the read-only transaction', `CREATE TABLE public.loot AS SELECT * FROM public.secret; RETURN 'x';`],
    ['write sqlml state', `UPDATE ml.jobs SET status = 'ready'; RETURN 'x';`],
  ];
  for (const [what, body] of escapes) {
    it(`${what}: the job fails, and neither the data nor a right leaked`, async () => {
      const fn = `${alice}_s.f_${randomBytes(3).toString('hex')}`;
      await A.query(`CREATE FUNCTION ${fn}() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN ${body} END $f$`);
      const out = await outcome(`SELECT x, y, ${fn}() AS z FROM ${alice}_s.points`);
      expect(out).not.toBe('ready');
      expect(out).not.toContain(SECRET);
      expect(out).toMatch(/permission denied|cannot set parameter|read-only transaction|cannot execute|must be|does not exist/);
      expect(await tableExists('public.loot')).toBe(false);
      expect(await isSuperuser(alice)).toBe(false);
      expect((await rows<{ status: string }>(t.pool, 'SELECT status FROM ml.jobs WHERE id = $1', [bobJob]))[0]!.status).toBe('ready');
    });
  }

  it("another role's training function returns nothing to alice, to the reader role, or to a guessed secret", async () => {
    const [{ job }] = (await rows<{ job: string }>(B, `SELECT ml_create_model('bob_seg2', 'kmeans', 'SELECT x, y FROM ${bob}_s.points', '{"num_clusters": 2}') AS job`)) as [{ job: string }];
    const [{ fn, token }] = (await rows<{ fn: string; token: string }>(t.pool, `SELECT query_function::regprocedure::text AS fn, query_token AS token FROM ml.jobs WHERE id = $1`, [job])) as [{ fn: string; token: string }];
    const call = fn.replace(/\(\)$/, '()');
    expect(await fails(A, `SELECT * FROM ${call}`)).toMatch(/permission denied for (function|schema)/);
    for (const options of ['', `-c sqlml.reader_secret=${'0'.repeat(48)}`]) {
      const reader = new pg.Client({ connectionString: t.roles.readerUrl, options });
      await reader.connect();
      try {
        expect((await reader.query(`SELECT * FROM ${call}`)).rows).toEqual([]);
        await expect(reader.query(`SELECT * FROM ml.readers`)).rejects.toThrow(/permission denied/);
      } finally {
        await reader.end();
      }
    }
    // with the secret the sidecar registered, the same call returns the rows: the guard is what stops the others
    await t.pool.query(`INSERT INTO ml.readers (token, secret) VALUES ($1, 'known-secret')`, [token]);
    const reader = new pg.Client({ connectionString: t.roles.readerUrl, options: '-c sqlml.reader_secret=known-secret' });
    await reader.connect();
    try {
      expect((await reader.query(`SELECT count(*)::int AS n FROM ${call}`)).rows[0].n).toBe(200);
    } finally {
      await reader.end();
      await t.pool.query(`DELETE FROM ml.readers WHERE secret = 'known-secret'`);
    }
    await B.query('SELECT ml_wait($1)', [job]);
  });

  it("another role's type in a query: its owner's casts (to text, float8, json) never run, in the reader session or in a scorer's", async () => {
    // alice shares a lookup table whose column has her type, with casts whose functions would
    // leak what they see (here: they raise, so that running at all fails the test)
    await A.query(`CREATE TYPE ${alice}_s.tier AS ENUM ('bronze', 'silver', 'gold'); GRANT USAGE ON SCHEMA ${alice}_s TO PUBLIC`);
    for (const target of ['text', 'float8', 'json', 'jsonb']) {
      await A.query(`CREATE FUNCTION ${alice}_s.tier_${target}(${alice}_s.tier) RETURNS ${target} LANGUAGE plpgsql AS $f$
        BEGIN RAISE EXCEPTION 'alice''s cast ran as %', current_user; END $f$`);
      await A.query(`CREATE CAST (${alice}_s.tier AS ${target}) WITH FUNCTION ${alice}_s.tier_${target}(${alice}_s.tier)`);
    }
    await A.query(`CREATE TABLE ${alice}_s.tiers AS SELECT i AS id, (ARRAY['bronze', 'silver', 'gold'])[1 + i % 3]::${alice}_s.tier AS tier FROM generate_series(1, 200) i`);
    await A.query(`GRANT SELECT ON ${alice}_s.tiers TO PUBLIC`);
    await B.query(`CREATE TABLE ${bob}_s.pay AS SELECT i AS id, (i * 1000)::float8 AS salary, (i % 2 = 0) AS churned FROM generate_series(1, 200) i`);
    const q = `SELECT p.salary, t.tier FROM ${bob}_s.pay p JOIN ${alice}_s.tiers t USING (id)`;
    for (const [type, options] of [['kmeans', '{"num_clusters": 2}'], ['hdbscan', '{"min_cluster_size": 10, "output_table": "' + bob + '_s.tier_labels"}']] as const) {
      if (type === 'hdbscan') await t.pool.query(`GRANT USAGE, CREATE ON SCHEMA ${bob}_s TO ml_sidecar`);
      const [{ job }] = (await rows<{ job: string }>(B, `SELECT ml_create_model('bob_tier_${type}', '${type}', $1, $2::jsonb) AS job`, [type === 'hdbscan' ? `SELECT p.id, p.salary, t.tier FROM ${bob}_s.pay p JOIN ${alice}_s.tiers t USING (id)` : q, type === 'hdbscan' ? JSON.stringify({ min_cluster_size: 10, exclude: ['id', 'tier'], output_table: `${bob}_s.tier_labels` }) : options])) as [{ job: string }];
      const [w] = await rows<{ status: string }>(B, 'SELECT status FROM ml_wait($1)', [job]);
      expect(w!.status).toBe('ready');
    }
    const [{ job: cj }] = (await rows<{ job: string }>(B, `SELECT ml_create_model('bob_tier_cls', 'logistic_reg', $1, '{"input_label_cols": ["tier"]}') AS job`, [q])) as [{ job: string }];
    await B.query('SELECT ml_wait($1)', [cj]);
    // scoring, evaluating, explaining and profiling the same query in bob's own session
    for (const sql of [
      `SELECT count(*) FROM ml_predict('bob_tier_kmeans', $1)`,
      `SELECT count(*) FROM ml_evaluate('bob_tier_kmeans', $1)`,
      `SELECT count(*) FROM ml_predict('bob_tier_cls', $1)`,
      `SELECT count(*) FROM ml_evaluate('bob_tier_cls', $1)`,
      `SELECT count(*) FROM ml_explain_predict('bob_tier_cls', $1)`,
      `SELECT count(*) FROM ml_profile($1, 'tier')`,
    ]) {
      expect(Number((await rows<{ count: string }>(B, sql, [q]))[0]!.count), sql).toBeGreaterThan(0);
    }
    const [p] = await rows<{ input: { tier: string } }>(B, `SELECT input FROM ml_predict('bob_tier_kmeans', $1) LIMIT 1`, [q]);
    expect(['bronze', 'silver', 'gold']).toContain(p!.input.tier);
    // a clv model whose customer column has alice's type: the RFM summary (computed in bob's
    // training function, in the reader session) and ml_rfm / ml_predict in bob's session never
    // run her casts either (they raise: the job would fail)
    const tx = `SELECT t.tier, DATE '2020-01-01' + p.id * 3 AS day, p.salary FROM ${bob}_s.pay p JOIN ${alice}_s.tiers t USING (id)`;
    const [{ job: vj }] = (await rows<{ job: string }>(B, `SELECT ml_create_model('bob_tier_clv', 'clv', $1, '{"spend_model": "none", "calibration_end": "2021-01-01"}') AS job`, [tx])) as [{ job: string }];
    const [v] = await rows<{ status: string }>(B, 'SELECT status FROM ml_wait($1)', [vj]);
    expect(v!.status).toBe('ready');
    expect((await rows<{ customer_id: string }>(B, `SELECT customer_id FROM ml_rfm($1) ORDER BY 1`, [tx])).map((r) => r.customer_id)).toEqual(['bronze', 'gold', 'silver']);
    expect(Number((await rows<{ count: string }>(B, `SELECT count(*) FROM ml_predict('bob_tier_clv', $1)`, [tx]))[0]!.count)).toBe(3);
  });

  it("another role's type inside a record, an array of records or an anyarray: still never its owner's casts", async () => {
    // (the type and its raising casts are alice's, from the test above)
    await A.query(`ANALYZE ${alice}_s.tiers`).catch(() => undefined);
    const queries = [
      `SELECT p.salary, t.tier, ROW(t.tier) AS r FROM ${bob}_s.pay p JOIN ${alice}_s.tiers t USING (id)`,
      `SELECT p.salary, t.tier, ARRAY[ROW(t.tier, 1)] AS r FROM ${bob}_s.pay p JOIN ${alice}_s.tiers t USING (id)`,
      `SELECT p.salary, t.tier, s.most_common_vals AS r FROM ${bob}_s.pay p JOIN ${alice}_s.tiers t USING (id), pg_stats s WHERE s.tablename = 'tiers' AND s.attname = 'tier'`,
    ];
    for (const q of queries) {
      for (const sql of [`SELECT count(*) FROM ml_predict('bob_tier_kmeans', $1)`, `SELECT count(*) FROM ml_profile($1, 'salary')`, `SELECT count(*) FROM ml_describe($1)`]) {
        await B.query(sql, [q]);
      }
    }
  });
});

describe('3. no role writes sqlml state; definer functions check who calls', () => {
  const writes = [
    `INSERT INTO ml.models (model_name, version, model_type, owner, scores_function) VALUES ('x', 1, 'kmeans', current_user, 'ml.x(); ALTER ROLE ${'ALICE'} SUPERUSER; --')`,
    `UPDATE ml.models SET scores_function = 'ml.x(); ALTER ROLE ${'ALICE'} SUPERUSER; --'`,
    `DELETE FROM ml.models`,
    `INSERT INTO ml.jobs (model_id, training_query, requested_by) VALUES (1, 'SELECT 1', current_user)`,
    `UPDATE ml.jobs SET model_id = 1`,
    `INSERT INTO ml.grants (model_name, grantee) VALUES ('bob_seg', current_user)`,
    `DELETE FROM ml.grants`,
    `INSERT INTO ml.trials (model_id, trial_id, hyperparameters, status, scores_function) VALUES (1, 9, '{}', 'succeeded', 'x')`,
    `INSERT INTO ml.readers (token, secret) VALUES ('a', 'b')`,
    `INSERT INTO ml.generated_functions (fn, model_id, kind) VALUES ('ml_drop_model(text)'::regprocedure, 1, 'public')`,
    `INSERT INTO ml.output_tables (relid, model_name, owner) VALUES ('public.secret'::regclass, 'x', current_user)`,
    `SELECT nextval('ml.jobs_id_seq')`,
  ];
  for (const w of writes) {
    it(`refused: ${JSON.stringify(w.slice(0, 60))}`, async () => {
      expect(await fails(A, w.replaceAll('ALICE', alice))).toMatch(/permission denied/);
      expect(await isSuperuser(alice)).toBe(false);
    });
  }

  const forged: [string, RegExp][] = [
    [`SELECT ml.cancel_job(${'JOB'}, '${'BOB'}')`, /cannot act as role/],
    [`SELECT ml.grant_model('bob_seg', '${'ALICE'}', '${'BOB'}')`, /cannot act as role/],
    [`SELECT ml.revoke_model('bob_seg', '${'ALICE'}', '${'BOB'}')`, /cannot act as role/],
    [`SELECT ml.drop_model('bob_seg', '${'BOB'}')`, /cannot act as role/],
    [`SELECT ml.request_schema('${'BOB'}')`, /cannot act as role/],
    [`SELECT ml.acting_as('ml_sidecar')`, /cannot act as role/],
    [`SELECT ml.drop_generated((SELECT id FROM ml.models WHERE model_name = 'bob_seg'), ARRAY['public', 'internal'])`, /must be owner|permission denied/],
    [`SELECT ml.set_execute('bob_seg', current_user, true)`, /must be owner|permission denied|not the owner/],
    [`SELECT ml.enqueue_training('ml_drop_model(text)'::regprocedure, '${'0'.repeat(32)}', 10, 'forged', 'kmeans', '{}', 'SELECT 1', 'SELECT 1')`, /must be given as ml_create_model makes it/],
  ];
  for (const [sql, message] of forged) {
    it(`a definer function called directly with forged arguments: ${sql.slice(7, 40)}`, async () => {
      const q = sql.replaceAll('ALICE', alice).replaceAll('BOB', bob).replaceAll('JOB', bobJob);
      expect(await fails(A, q)).toMatch(message);
      const [s] = await rows<{ status: string; grants: string }>(t.pool, `SELECT (SELECT status FROM ml.jobs WHERE id = $1) AS status, (SELECT string_agg(grantee, ',') FROM ml.grants WHERE model_name = 'bob_seg') AS grants`, [bobJob]);
      expect(s).toEqual({ status: 'ready', grants: alice });
      expect(Number((await rows<{ n: string }>(B, `SELECT count(*) AS n FROM ml_predict('bob_seg', 'SELECT x, y FROM ${bob}_s.points')`))[0]!.n)).toBe(200);
    });
  }

  it("another role's guard token cannot be reused: ml.enqueue_training takes only an unused token issued to the function's owner", async () => {
    const [{ token }] = (await rows<{ token: string }>(t.pool, `SELECT query_token AS token FROM ml.jobs WHERE id = $1`, [bobJob])) as [{ token: string }];
    const [{ s }] = (await rows<{ s: string }>(A, `SELECT ml.request_schema(current_user) AS s`)) as [{ s: string }];
    const body = (await rows<{ b: string }>(A, `SELECT ml.reader_function_body('SELECT 1::float8 AS x', $1) AS b`, [token]))[0]!.b;
    await A.query(`CREATE FUNCTION "${s}".q_evil() RETURNS TABLE (x float8) LANGUAGE plpgsql SECURITY DEFINER AS $f$${body}$f$`);
    await A.query(`REVOKE ALL ON FUNCTION "${s}".q_evil() FROM PUBLIC; GRANT EXECUTE ON FUNCTION "${s}".q_evil() TO ml_reader`);
    const msg = await fails(A, `SELECT ml.enqueue_training('"${s}".q_evil()'::regprocedure, $1, 1, 'stolen', 'kmeans', '{"num_clusters": 2}', 'SELECT 1::float8 AS x', 'SELECT 1::float8 AS x')`, [token]);
    expect(msg).toMatch(/its token was not issued to its owner, or was used/);
    // a token of one's own, once only
    const [{ mine }] = (await rows<{ mine: string }>(A, `SELECT ml.issue_token(current_user) AS mine`)) as [{ mine: string }];
    const body2 = (await rows<{ b: string }>(A, `SELECT ml.reader_function_body('SELECT 1::float8 AS x', $1) AS b`, [mine]))[0]!.b;
    await A.query(`CREATE OR REPLACE FUNCTION "${s}".q_evil() RETURNS TABLE (x float8) LANGUAGE plpgsql SECURITY DEFINER AS $f$${body2}$f$`);
    await A.query(`SELECT ml.enqueue_training('"${s}".q_evil()'::regprocedure, $1, 1, 'own_token', 'kmeans', '{"num_clusters": 2}', 'SELECT 1::float8 AS x', 'SELECT 1::float8 AS x')`, [mine]);
    expect(await fails(A, `SELECT ml.issue_token('${bob}')`)).toMatch(/cannot act as role/);
  });

  it("a schema squatted under a role's request-schema name is refused, not used", async () => {
    await t.pool.query(`CREATE ROLE dave_${suffix} LOGIN PASSWORD 'pw'`);
    const [{ oid }] = (await rows<{ oid: string }>(t.pool, `SELECT oid::text FROM pg_roles WHERE rolname = $1`, [`dave_${suffix}`])) as [{ oid: string }];
    await t.pool.query(`GRANT CREATE ON DATABASE ${new URL(t.url).pathname.slice(1)} TO ${alice}`);
    try {
      await A.query(`CREATE SCHEMA ml_q_${oid}`);
      const D = makePool(withUser(t.url, `dave_${suffix}`, 'pw'), 1);
      try {
        expect(await fails(D, `SELECT ml_create_model('d1', 'kmeans', 'SELECT 1::float8 AS x')`)).toMatch(new RegExp(`schema ml_q_${oid} exists but was not made by sqlml \\(owner "${alice}"\\)`));
      } finally {
        await D.end();
      }
    } finally {
      await t.pool.query(`DROP SCHEMA IF EXISTS ml_q_${oid}; REVOKE CREATE ON DATABASE ${new URL(t.url).pathname.slice(1)} FROM ${alice}`);
    }
  });

  it('a training function altered after enqueue is not read', async () => {
    const [{ job }] = (await rows<{ job: string }>(A, `SELECT ml_create_model('altered', 'kmeans', 'SELECT x, y FROM ${alice}_s.points, pg_sleep(1.5)', '{"num_clusters": 2}') AS job`)) as [{ job: string }];
    const [{ fn }] = (await rows<{ fn: string }>(A, `SELECT query_function::regprocedure::text AS fn FROM ml.jobs WHERE id = $1`, [job])) as [{ fn: string }];
    // alice owns it: she may change it, and then it is hers alone to read
    await A.query(`ALTER FUNCTION ${fn} SECURITY INVOKER`).catch(() => undefined);
    const err = await A.query('SELECT ml_wait($1)', [job]).then(() => 'ready', (e: Error) => e.message);
    expect(['ready', err]).toContain(err); // read before the change, or refused after it
    if (err !== 'ready') expect(err).toMatch(/was changed after ml_create_model made it/);
  });
});

describe('4. the API acts only on what the caller owns', () => {
  it('a cheap function of the caller in a WHERE clause on ml_models or ml_jobs sees no row of another role', async () => {
    await A.query(`CREATE TABLE ${alice}_s.seen (what text)`);
    await A.query(`CREATE FUNCTION ${alice}_s.peek(VARIADIC text[]) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $f$
      BEGIN INSERT INTO ${alice}_s.seen VALUES (array_to_string($1, ' | ', '-')); RETURN true; END $f$`);
    await A.query(`SELECT count(*) FROM ml_jobs WHERE ${alice}_s.peek(error, requested_by::text)`);
    await A.query(`SELECT count(*) FROM ml_models WHERE ${alice}_s.peek(owner::text, model_name, options::text, metrics::text)`);
    const seen = await rows<{ what: string }>(t.pool, `SELECT what FROM ${alice}_s.seen`);
    // bob_seg is granted to alice: she may see that model, not its job, nor any other of bob's
    expect(seen.filter((r) => r.what.includes(bob) && !r.what.includes(' | bob_seg | '))).toEqual([]);
    expect(seen.some((r) => r.what.includes(' | bob_seg | '))).toBe(true);
  });

  it("another role's model: no grant, no drop, no cancel, no wait, no retrain, no name", async () => {
    await t.pool.query(`CREATE ROLE carol_${suffix} LOGIN PASSWORD 'pw'`);
    const C = makePool(withUser(t.url, `carol_${suffix}`, 'pw'), 1);
    try {
      expect(await fails(C, `SELECT ml_grant('bob_seg', current_user)`)).toMatch(/is not yours to share/);
      expect(await fails(C, `SELECT ml_revoke('bob_seg', '${alice}')`)).toMatch(/is not yours to share/);
      expect(await fails(C, `SELECT ml_drop_model('bob_seg')`)).toMatch(/model "bob_seg" does not exist/);
      expect(await fails(C, `SELECT ml_drop_model('bob_seg@1')`)).toMatch(/model "bob_seg" does not exist/);
      expect(await fails(C, `SELECT ml.drop_version('bob_seg', 1, current_user)`)).toMatch(/model "bob_seg" does not exist/);
      expect(await fails(C, `SELECT ml.drop_version('bob_seg', 1, '${bob}')`)).toMatch(/cannot act as role/);
      expect(await fails(C, `SELECT ml_cancel(${bobJob})`)).toMatch(/does not exist \(or belongs to another role\)/);
      expect(await fails(C, `SELECT ml_wait(${bobJob})`)).toMatch(/does not exist \(or belongs to another role\)/);
      expect(await fails(C, `SELECT ml_create_model('bob_seg', 'kmeans', 'SELECT 1::float8 AS x')`)).toMatch(/model name "bob_seg" is taken by role/);
      expect(await fails(C, `SELECT ml_create_model('c1', 'kmeans', 'SELECT 1::float8 AS x', '{"function_name": "bob_seg_predict"}')`)).toMatch(/already a scoring function of model "bob_seg"/);
      expect(await fails(C, `SELECT ml_create_model('c2', 'kmeans', 'SELECT 1::float8 AS x', '{"function_name": "ml_drop_model"}')`)).toMatch(/function public.ml_drop_model\(text\) \(owner "ml_sidecar"\) already exists and was not made by sqlml/);
      // a grantee may read and wait, not drop or share
      expect(await fails(A, `SELECT ml_drop_model('bob_seg')`)).toMatch(/does not exist/);
      expect(await fails(A, `SELECT ml_grant('bob_seg', 'carol_${suffix}')`)).toMatch(/is not yours to share/);
      const [w] = await rows<{ status: string }>(A, `SELECT status FROM ml_wait(${bobJob}, '5 seconds')`);
      expect(w!.status).toBe('ready');
      expect((await rows<{ state: string }>(B, `SELECT state FROM ml_models WHERE model_name = 'bob_seg'`))[0]!.state).toBe('ready');
    } finally {
      await C.end();
    }
  });

  it("a grantee's ml_wait on a finished job returns at once", async () => {
    const started = Date.now();
    await A.query(`SELECT ml_wait(${bobJob}, '30 seconds')`);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('5. generated functions are never adopted, replaced or dropped unless sqlml made them for that model', () => {
  beforeAll(async () => {
    await t.pool.query(`GRANT CREATE ON SCHEMA public TO ${alice}`); // a lax database: public open to alice
  });
  afterAll(async () => {
    await t.pool.query(`REVOKE CREATE ON SCHEMA public FROM ${alice}`);
  });

  it('a function squatted before enqueue: refused at enqueue, naming it and its owner', async () => {
    await A.query(`CREATE FUNCTION public.bob_seg9_predict(float8, float8) RETURNS int LANGUAGE sql AS 'SELECT 1'`);
    const msg = await fails(B, `SELECT ml_create_model('bob_seg9', 'kmeans', 'SELECT x, y FROM ${bob}_s.points')`);
    expect(msg).toMatch(new RegExp(`function public.bob_seg9_predict\\(double precision,double precision\\) \\(owner "${alice}"\\) already exists and was not made by sqlml`));
  });

  for (const [what, args] of [['the same arguments', 'float8, float8'], ['an overload', 'numeric']] as const) {
    it(`squatted between enqueue and write-back (${what}): the job fails naming it; it is not replaced`, async () => {
      const name = `bob_sq${args.length}`;
      const [{ job }] = (await rows<{ job: string }>(B, `SELECT ml_create_model('${name}', 'kmeans', 'SELECT x, y FROM ${bob}_s.points, pg_sleep(1)', '{"num_clusters": 2}') AS job`)) as [{ job: string }];
      await A.query(`CREATE FUNCTION public.${name}_predict(${args}) RETURNS int LANGUAGE sql AS 'SELECT 42'`);
      const err = await B.query('SELECT ml_wait($1)', [job]).then(() => 'ready', (e: Error) => e.message);
      expect(err).toMatch(new RegExp(`a function public.${name}_predict\\(.*\\) \\(owner "${alice}"\\) already exists and was not made by sqlml for model "${name}"`));
      const [f] = await rows<{ owner: string; src: string }>(t.pool, `SELECT pg_get_userbyid(proowner) AS owner, prosrc AS src FROM pg_proc WHERE proname = $1`, [`${name}_predict`]);
      expect(f).toEqual({ owner: alice, src: 'SELECT 42' });
    });
  }

  it("dropping a model drops only the functions sqlml recorded for it, and revokes nothing of others'", async () => {
    await A.query(`SELECT ml_create_model('alice_tmp', 'kmeans', 'SELECT x, y FROM ${alice}_s.points', '{"num_clusters": 2}')`).then((r) => A.query('SELECT ml_wait($1)', [r.rows[0].ml_create_model]));
    await A.query(`SELECT ml_drop_model('alice_tmp')`);
    expect(await rows(t.pool, `SELECT 1 FROM pg_proc WHERE proname = 'alice_tmp_predict'`)).toEqual([]);
    expect(Number((await rows<{ n: string }>(A, `SELECT count(bob_seg_predict(x, y)) AS n FROM ${alice}_s.points`))[0]!.n)).toBe(200);
  });
});

describe('5b. a model cannot make others run its owner\'s code', () => {
  it("a function_name that is a built-in's name is refused (it would capture unqualified calls in every session)", async () => {
    for (const name of ['format', 'concat_ws', 'now']) {
      expect(await fails(A, `SELECT ml_create_model('fmt_${name}', 'kmeans', 'SELECT x, y FROM ${alice}_s.points', $1::jsonb)`, [JSON.stringify({ function_name: name })])).toMatch(
        new RegExp(`function name "${name}" is the name of a PostgreSQL built-in function`),
      );
    }
  });

  it("a label of the owner's own type: the generated function returns text, so scoring runs none of the owner's casts", async () => {
    await A.query(`CREATE TYPE ${alice}_s.lbl AS ENUM ('even', 'odd'); GRANT USAGE ON SCHEMA ${alice}_s TO PUBLIC`);
    await A.query(`CREATE TABLE ${alice}_s.loot (who text)`);
    await A.query(`GRANT INSERT ON ${alice}_s.loot TO PUBLIC`);
    await A.query(`CREATE FUNCTION ${alice}_s.to_lbl(text) RETURNS ${alice}_s.lbl LANGUAGE plpgsql AS $f$
      BEGIN INSERT INTO ${alice}_s.loot VALUES (current_user); RETURN (SELECT e FROM unnest(enum_range(NULL::${alice}_s.lbl)) e WHERE e::text = $1); END $f$`);
    await A.query(`CREATE CAST (text AS ${alice}_s.lbl) WITH FUNCTION ${alice}_s.to_lbl(text)`);
    await A.query(`CREATE TABLE ${alice}_s.tr AS SELECT i::float8 AS x, (CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END)::${alice}_s.lbl AS label FROM generate_series(1, 200) i`);
    const [{ job }] = (await rows<{ job: string }>(A, `SELECT ml_create_model('alice_cls', 'logistic_reg', 'SELECT x, label FROM ${alice}_s.tr', '{"input_label_cols": ["label"]}') AS job`)) as [{ job: string }];
    await A.query('SELECT ml_wait($1)', [job]);
    await A.query(`SELECT ml_grant('alice_cls', '${bob}')`);
    const [r] = await rows<{ p: string; t: string }>(B, `SELECT alice_cls_predict(3.0) AS p, pg_typeof(alice_cls_predict(3.0))::text AS t`);
    expect(r!.t).toBe('text');
    expect(['even', 'odd']).toContain(r!.p);
    expect(await rows(t.pool, `SELECT who FROM ${alice}_s.loot WHERE who = '${bob}'`)).toEqual([]);
  });
});

describe('6. the sidecar never resolves a name through a schema a user can write', () => {
  it('overloads planted in public are not called by the sidecar', async () => {
    await t.pool.query(`GRANT CREATE ON SCHEMA public TO ${alice}`);
    try {
      await A.query(`CREATE TABLE public.pwned (who text, at timestamptz DEFAULT now()); GRANT INSERT ON public.pwned TO PUBLIC`);
      await A.query(`CREATE FUNCTION public.jsonb_build_object(text, integer, text, text, text, timestamptz) RETURNS jsonb LANGUAGE plpgsql AS $f$
        BEGIN INSERT INTO public.pwned (who) VALUES (current_user); RETURN '{}'::jsonb; END $f$`);
      await A.query(`CREATE FUNCTION public.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE plpgsql AS $f$
        BEGIN INSERT INTO public.pwned (who) VALUES (current_user); RETURN '{}'::jsonb; END $f$`);
      await A.query(`CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE plpgsql AS $f$
        BEGIN INSERT INTO public.pwned (who) VALUES (current_user); RETURN ''; END $f$`);
      expect(await outcome(`SELECT x, y FROM ${alice}_s.points`)).toBe('ready');
      expect(await rows(t.pool, `SELECT who FROM public.pwned WHERE who <> '${alice}'`)).toEqual([]);
    } finally {
      await t.pool.query(`DROP TABLE IF EXISTS public.pwned; DROP FUNCTION IF EXISTS public.jsonb_build_object(text, integer, text, text, text, timestamptz), public.jsonb_build_object(text, text), public.format(text, text)`);
      await t.pool.query(`REVOKE CREATE ON SCHEMA public FROM ${alice}`);
    }
  });
});

describe('6b. names in a training query are bound when it is enqueued', () => {
  it('a table planted later earlier on the search_path is not read', async () => {
    await t.pool.query(`GRANT CREATE ON SCHEMA public TO ${bob}`);
    const c = new pg.Client({ connectionString: withUser(t.url, alice, 'pw') });
    await c.connect();
    try {
      await c.query(`SET search_path = public, ${alice}_s`);
      await c.query('BEGIN');
      const { rows: r } = await c.query(`SELECT ml_create_model('bound', 'kmeans', 'SELECT x, y FROM points', '{"num_clusters": 2}') AS job`);
      await B.query(`CREATE VIEW public.points AS SELECT 1000::float8 AS x, 1000::float8 AS y FROM generate_series(1, 5)`);
      await B.query(`GRANT SELECT ON public.points TO PUBLIC`);
      await c.query('COMMIT');
      await c.query('SELECT ml_wait($1)', [r[0].job]);
      const [m] = await rows<{ rows: number }>(A, `SELECT (metrics->>'rows')::int AS rows FROM ml_models WHERE model_name = 'bound'`);
      expect(m!.rows).toBe(200);
    } finally {
      await c.end();
      await t.pool.query(`DROP VIEW IF EXISTS public.points; REVOKE CREATE ON SCHEMA public FROM ${bob}`);
    }
  });
});

describe('7. no session state outlives a job; output_table goes only where the requester may create tables', () => {
  it('a setting left by one job is not seen by the next', async () => {
    await A.query(`CREATE FUNCTION ${alice}_s.leave() RETURNS int LANGUAGE sql AS $f$ SELECT set_config('sqlml_test.left', 'alice', false)::int * 0 + 1 $f$`).catch(() => undefined);
    await A.query(`CREATE OR REPLACE FUNCTION ${alice}_s.leave() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN PERFORM set_config('sqlml_test.left', 'alice', false); RETURN 1; END $f$`);
    await A.query(`CREATE FUNCTION ${alice}_s.find() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN IF current_setting('sqlml_test.left', true) IS NOT NULL AND current_setting('sqlml_test.left', true) <> '' THEN RAISE EXCEPTION 'left over: %', current_setting('sqlml_test.left', true); END IF; RETURN 1; END $f$`);
    expect(await outcome(`SELECT x, ${alice}_s.leave() AS l FROM ${alice}_s.points`)).toBe('ready');
    for (let i = 0; i < 3; i++) expect(await outcome(`SELECT x, ${alice}_s.find() AS f FROM ${alice}_s.points`)).toBe('ready');
  });

  const refused: [string, RegExp][] = [
    ['pg_temp.labels', /cannot name a table in schema "pg_temp"/],
    ['pg_catalog.labels', /cannot name a table in schema "pg_catalog"/],
    ['ml.labels', /cannot name a table in schema "ml"/],
    [`BOB_s.labels`, /may not create tables in schema/],
    ['public.secret', /may not create tables in schema "public"|already exists/],
    ['demo.orders', /may not create tables in schema "demo"|already exists/],
  ];
  for (const [table, message] of refused) {
    it(`output_table ${table} is refused at enqueue`, async () => {
      const msg = await fails(A, `SELECT ml_create_model('o1', 'kmeans', 'SELECT x, y FROM ${alice}_s.points', $1::jsonb)`, [JSON.stringify({ output_table: table.replace('BOB', bob) })]);
      expect(msg).toMatch(message);
    });
  }

  it("a view another role builds on an output_table keeps it from neither retraining nor dropping", async () => {
    await t.pool.query(`GRANT USAGE, CREATE ON SCHEMA ${bob}_s TO ml_sidecar`);
    await B.query(`GRANT USAGE ON SCHEMA ${bob}_s TO PUBLIC`);
    const train = async () => {
      const [{ job }] = (await rows<{ job: string }>(B, `SELECT ml_create_model('bob_out', 'kmeans', $1, $2::jsonb) AS job`, [
        `SELECT x AS id, x, y FROM ${bob}_s.points`,
        JSON.stringify({ num_clusters: 2, exclude: ['id'], output_table: `${bob}_s.bob_labels` }),
      ])) as [{ job: string }];
      return (await rows<{ status: string }>(B, `SELECT status FROM ml_wait($1)`, [job]))[0]!.status;
    };
    expect(await train()).toBe('ready');
    await A.query(`CREATE VIEW ${alice}_s.pin AS SELECT * FROM ${bob}_s.bob_labels`).catch(() => A.query(`CREATE FUNCTION ${alice}_s.pin(r ${bob}_s.bob_labels) RETURNS int LANGUAGE sql AS 'SELECT 1'`));
    expect(await train()).toBe('ready');
    await A.query(`CREATE FUNCTION ${alice}_s.pin2(r ${bob}_s.bob_labels) RETURNS int LANGUAGE sql AS 'SELECT 1'`);
    expect((await rows<{ n: number }>(B, `SELECT ml_drop_model('bob_out') AS n`))[0]!.n).toBe(2);
  });

  it("an existing table of the requester's that sqlml did not write is not replaced", async () => {
    await A.query(`CREATE TABLE ${alice}_s.keep (a int); INSERT INTO ${alice}_s.keep VALUES (1)`);
    const msg = await fails(A, `SELECT ml_create_model('o2', 'kmeans', 'SELECT x, y FROM ${alice}_s.points', $1::jsonb)`, [JSON.stringify({ output_table: `${alice}_s.keep` })]);
    expect(msg).toMatch(/already exists \(owner ".*"\) and was not written by sqlml for model "o2"/);
    expect((await rows(A, `SELECT a FROM ${alice}_s.keep`))).toEqual([{ a: 1 }]);
  });

  it('an output_table in a schema of the requester is written by the sidecar and readable by the requester, and replaced on retraining', async () => {
    await t.pool.query(`GRANT USAGE, CREATE ON SCHEMA ${alice}_s TO ml_sidecar`);
    for (let i = 0; i < 2; i++) {
      expect(await outcome(`SELECT x AS id, x, y FROM ${alice}_s.points`, JSON.stringify({ num_clusters: 2, exclude: ['id'], output_table: `${alice}_s.labels` }), 'alice_out')).toBe('ready');
    }
    const r = await rows<{ n: string }>(A, `SELECT count(*) AS n FROM ${alice}_s.labels`);
    expect(Number(r[0]!.n)).toBe(200);
    expect(await fails(B, `SELECT count(*) FROM ${alice}_s.labels`)).toMatch(/permission denied/);
  });
});

describe('bounded work', () => {
  it('ml_cancel interrupts a training query that sleeps, within seconds', async () => {
    const [{ job }] = (await rows<{ job: string }>(A, `SELECT ml_create_model('sleepy', 'kmeans', 'SELECT x, y FROM ${alice}_s.points, pg_sleep(600)', '{"num_clusters": 2}') AS job`)) as [{ job: string }];
    for (let i = 0; i < 100; i++) {
      const [s] = await rows<{ status: string }>(A, 'SELECT status FROM ml_jobs WHERE id = $1', [job]);
      if (s!.status === 'training') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await A.query('SELECT ml_cancel($1)', [job]);
    expect(await fails(A, `SELECT ml_wait($1, '20 seconds')`, [job])).toMatch(/was cancelled/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a classifier with more distinct labels than max_classes fails when the labels are read', async () => {
    const [{ job }] = (await rows<{ job: string }>(A, `SELECT ml_create_model('many', 'boosted_tree_classifier', 'SELECT i::float8 AS x, (i % 500)::text AS label FROM generate_series(1, 2000) i', '{"input_label_cols": ["label"]}') AS job`)) as [{ job: string }];
    expect(await fails(A, 'SELECT ml_wait($1)', [job])).toMatch(/label column "label" has 500 distinct values; a classifier accepts at most 100 classes \(option "max_classes"\)/);
    expect(await fails(A, `SELECT ml_create_model('many2', 'linear_reg', 'SELECT 1::float8 AS x, 2::float8 AS label', '{"input_label_cols": ["label"], "max_classes": 5}')`)).toMatch(/option "max_classes" applies to classifiers/);
  });
});

describe('8. what a second review found', () => {
  it('a NOTIFY on ml_cancel by anyone cancels nothing: the job row decides', async () => {
    const [{ job }] = (await rows<{ job: string }>(B, `SELECT ml_create_model('bob_slow', 'kmeans', 'SELECT x, y FROM ${bob}_s.points, pg_sleep(1.5)', '{"num_clusters": 2}') AS job`)) as [{ job: string }];
    for (let i = 0; i < 100; i++) {
      if ((await rows<{ status: string }>(B, 'SELECT status FROM ml_jobs WHERE id = $1', [job]))[0]!.status === 'training') break;
      await new Promise((r) => setTimeout(r, 30));
    }
    await A.query(`SELECT pg_notify('ml_cancel', $1)`, [job]);
    const [w] = await rows<{ status: string }>(B, `SELECT status FROM ml_wait($1, '30 seconds')`, [job]);
    expect(w!.status).toBe('ready');
  });

  it('a category string with a backslash runs nothing in a scorer whose standard_conforming_strings is off', async () => {
    const evil = `|| 1 THEN 1 END; PERFORM ${alice}_s.pwn(); --`;
    await A.query(`CREATE TABLE ${alice}_s.loot2 (who text); GRANT INSERT ON ${alice}_s.loot2 TO PUBLIC; GRANT USAGE ON SCHEMA ${alice}_s TO PUBLIC`);
    await A.query(`CREATE FUNCTION ${alice}_s.pwn() RETURNS void LANGUAGE sql AS $f$ INSERT INTO ${alice}_s.loot2 VALUES (current_user) $f$`);
    await A.query(`CREATE TABLE ${alice}_s.cats AS SELECT i::float8 AS x, CASE WHEN i % 2 = 0 THEN '\\' ELSE $e$${evil}$e$ END AS c FROM generate_series(1, 100) i`);
    const [{ job }] = (await rows<{ job: string }>(A, `SELECT ml_create_model('alice_bs', 'kmeans', 'SELECT x, c FROM ${alice}_s.cats', '{"num_clusters": 2}') AS job`)) as [{ job: string }];
    await A.query('SELECT ml_wait($1)', [job]);
    await A.query(`SELECT ml_grant('alice_bs', '${bob}')`);
    const c = new pg.Client({ connectionString: withUser(t.url, bob, 'pw') });
    await c.connect();
    try {
      await c.query('SET standard_conforming_strings = off');
      const r = await c.query(`SELECT alice_bs_predict(x, c) AS p FROM (VALUES (2::float8, E'\\\\'), (3::float8, 'plain')) v(x, c)`);
      expect(r.rows.map((x) => x.p).every((p: number) => p === 1 || p === 2)).toBe(true);
      await c.query(`SELECT count(*) FROM ml_predict('alice_bs', 'SELECT 2::float8 AS x, E''\\\\\\\\'' AS c')`);
    } finally {
      await c.end();
    }
    expect(await rows(t.pool, `SELECT who FROM ${alice}_s.loot2`)).toEqual([]);
  });

  it('an advisory lock on a model name blocks nobody, and a view on a model function does not keep the model from being dropped', async () => {
    const hold = new pg.Client({ connectionString: withUser(t.url, alice, 'pw') });
    await hold.connect();
    try {
      await hold.query(`SELECT pg_advisory_lock(hashtext('sqlml.model:bob_lock'))`);
      const [{ job }] = (await rows<{ job: string }>(B, `SELECT ml_create_model('bob_lock', 'kmeans', 'SELECT x, y FROM ${bob}_s.points', '{"num_clusters": 2}') AS job`)) as [{ job: string }];
      await B.query(`SELECT ml_wait($1, '20 seconds')`, [job]);
      await B.query(`SELECT ml_grant('bob_lock', '${alice}')`);
      await A.query(`CREATE VIEW ${alice}_s.dep AS SELECT bob_lock_predict(1::float8, 2::float8) AS c`);
      expect((await rows<{ n: number }>(B, `SELECT ml_drop_model('bob_lock') AS n`))[0]!.n).toBe(1);
      expect(await tableExists(`${alice}_s.dep`)).toBe(false);
    } finally {
      await hold.end();
    }
  });
});

describe('9. a database whose default is standard_conforming_strings = off', () => {
  let u: TestDb;
  beforeAll(async () => {
    u = await freshDatabase('scs');
    await u.pool.query(`ALTER DATABASE ${new URL(u.url).pathname.slice(1)} SET standard_conforming_strings = off`);
    await u.worker();
  });
  afterAll(async () => u?.close());

  it('a label column name with a backslash and a quote runs nothing as the sidecar', async () => {
    const col = `\\'; CREATE TABLE public.pwned AS SELECT current_user w; --`;
    const pool = makePool(u.url, 2);
    try {
      await pool.query(`CREATE TABLE public.tr AS SELECT i::float8 AS x, (i * 2)::float8 AS "${col.replace(/"/g, '""')}" FROM generate_series(1, 100) i`);
      const [{ job }] = (await rows<{ job: string }>(pool, `SELECT ml_create_model('scs_lin', 'linear_reg', 'SELECT * FROM public.tr', $1::jsonb) AS job`, [JSON.stringify({ input_label_cols: [col] })])) as [{ job: string }];
      await pool.query('SELECT ml_wait($1)', [job]);
      expect(await rows(pool, `SELECT to_regclass('public.pwned') AS r`)).toEqual([{ r: null }]);
    } finally {
      await pool.end();
    }
  });
});

describe('10. an upgrade does not trust rows users could write before it', () => {
  it('a planted ml.models row naming an API function is not recorded, so dropping it drops nothing of sqlml', async () => {
    const { install } = await import('../src/db/migrate.ts');
    const { provisionRoles } = await import('../src/db/roles.ts');
    const { TEST_PASSWORDS } = await import('./helpers.ts');
    const { restoreLayout1 } = await import('./layout1.ts');
    const db = `t_upgrade_${suffix}`;
    await t.pool.query(`CREATE DATABASE ${db}`);
    const admin = new URL(t.url);
    admin.pathname = `/${db}`;
    const roles = await provisionRoles(admin.toString(), TEST_PASSWORDS);
    const installer = makePool(roles.sidecarUrl, 1);
    const E = makePool(withUser(admin.toString(), alice, 'pw'), 1);
    try {
      await restoreLayout1(admin.toString(), roles.sidecarUrl);
      await E.query(`INSERT INTO ml.models (model_name, version, model_type, owner, function_signature) VALUES ('evil', 1, 'kmeans', current_user, 'ml_predict(text,text,jsonb)')`);
      // and many rows claiming another role's generated function under its own name
      const [{ sig }] = (await rows<{ sig: string }>(installer, `SELECT oid::regprocedure::text AS sig FROM pg_proc WHERE proname = 'seg_old_predict'`)) as [{ sig: string }];
      await E.query(`INSERT INTO ml.models (model_name, version, model_type, owner, function_name, function_signature)
                     SELECT 'evil2', v, 'kmeans', current_user, 'seg_old_predict', $1 FROM generate_series(1, 40) v`, [sig]);
      await install(installer);
      const recorded = await rows<{ f: string; model: string }>(
        installer,
        `SELECT g.fn::regprocedure::text AS f, m.model_name AS model FROM ml.generated_functions g JOIN ml.models m ON m.id = g.model_id ORDER BY 1`,
      );
      expect(recorded.length).toBeGreaterThan(3); // the fixture's two models, recorded
      expect(recorded.filter((r) => r.model === 'evil' || r.model === 'evil2' || /ml_predict/.test(r.f))).toEqual([]);
      expect(recorded.filter((r) => /seg_old_predict/.test(r.f)).map((r) => r.model)).toEqual(['seg_old']);
      await E.query(`SELECT ml_drop_model('evil2')`).catch(() => undefined);
      expect((await rows<{ f: string | null }>(installer, `SELECT to_regprocedure($1)::text AS f`, [sig]))[0]!.f).not.toBeNull();
      await E.query(`SELECT ml_drop_model('evil')`).catch(() => undefined);
      expect((await rows<{ f: string | null }>(installer, `SELECT to_regprocedure('public.ml_predict(text,text,jsonb)')::text AS f`))[0]!.f).not.toBeNull();
    } finally {
      await E.end();
      await installer.end();
    }
  });
});
