import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, freshDatabase, rows, type TestDb } from './helpers.ts';

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('validation', { demo: true });
  await t.worker();
  await t.pool.query('CREATE SEQUENCE public.counter; GRANT USAGE ON SEQUENCE public.counter TO PUBLIC');
});
afterAll(async () => t?.close());

const Q = 'SELECT * FROM demo.customer_features';

describe('requests are validated in SQL before anything is enqueued', () => {
  const cases: [string, string, string, RegExp][] = [
    ['unknown model type', 'kmeanz', '{}', /unknown model_type "kmeanz"; supported: kmeans/],
    ['unknown option', 'kmeans', '{"num_cluster": 4}', /unknown option "num_cluster" for model_type kmeans; allowed options: .*num_clusters/],
    ['num_clusters 1', 'kmeans', '{"num_clusters": 1}', /option "num_clusters" must be an integer between 2 and 1000 \(got "1"\)/],
    ['num_clusters "four"', 'kmeans', '{"num_clusters": "four"}', /option "num_clusters" must be an integer between 2 and 1000, "auto", \{"range": \[lo, hi\]\} or \{"candidates": \[k1, k2, ...\]\} with each k of a sweep between 2 and 100 \(got "four"\)/],
    ['num_clusters range reversed', 'kmeans', '{"num_clusters": {"range": [8, 3]}}', /option "num_clusters" must be .* \(got \{"range": \[8, 3\]\}\)/],
    ['num_clusters candidates out of range', 'kmeans', '{"num_clusters": {"candidates": [1, 4]}}', /option "num_clusters" must be/],
    ['bad tuning objective', 'kmeans', '{"hparam_tuning_objective": "inertia"}', /option "hparam_tuning_objective" must be one of davies_bouldin_index, silhouette_score, calinski_harabasz_score, elbow \(got "inertia"\)/],
    ['sweep with custom init', 'kmeans', '{"num_clusters": "auto", "kmeans_init_method": "custom", "kmeans_init_col": "c"}', /a num_clusters sweep cannot use "kmeans_init_method": "custom"/],
    ['num_clusters 2.5', 'kmeans', '{"num_clusters": 2.5}', /option "num_clusters" must be an integer between 2 and 1000 \(got "2.5"\)/],
    ['negative max_iterations', 'kmeans', '{"max_iterations": -3}', /option "max_iterations" must be an integer between 1 and 10000 \(got "-3"\)/],
    ['options not an object', 'kmeans', '[1, 2]', /options must be a JSON object/],
    ['bad distance type', 'kmeans', '{"distance_type": "manhattan"}', /option "distance_type" must be one of euclidean, cosine \(got "manhattan"\)/],
    ['custom init without column', 'kmeans', '{"kmeans_init_method": "custom"}', /"kmeans_init_method" = custom needs option "kmeans_init_col"/],
    ['init column without custom', 'kmeans', '{"kmeans_init_col": "x"}', /"kmeans_init_col" is only allowed with "kmeans_init_method": "custom"/],
    ['standardize not boolean', 'kmeans', '{"standardize_features": "yes"}', /option "standardize_features" must be true or false \(got "yes"\)/],
    ['exclude not names', 'kmeans', '{"exclude": [1]}', /option "exclude" must be a column name or an array of column names/],
    ['bad function name', 'kmeans', '{"function_name": "x; drop table t"}', /function_name 'x; drop table t' is not a valid name/],
  ];
  for (const [what, type, options, message] of cases) {
    it(`${what}: raises 22023 with a message that names the fix`, async () => {
      const err = await errorOf(t.pool, `SELECT ml_create_model('m', $1, $2, $3::jsonb)`, [type, Q, options]);
      expect(err.message).toMatch(message);
      if (what !== 'unknown model type') expect(err.code).toBe('22023');
    });
  }

  for (const name of [`bad"name`, 'x;drop', 'a'.repeat(64), '1abc', '']) {
    it(`model name ${JSON.stringify(name.slice(0, 12))} is refused`, async () => {
      const err = await errorOf(t.pool, `SELECT ml_create_model($1, 'kmeans', $2)`, [name, Q]);
      expect(err.message).toMatch(/model name .* is not a valid name/);
      expect(err.code).toBe('22023');
    });
  }

  it('a refused option carries one CONTEXT line (the API function), not one per nested checker; so does a failed CALL ml_train', async () => {
    const err = (await errorOf(t.pool, `SELECT ml_create_model('m', 'kmeans', $1, '{"num_clusters": 0}')`, [Q])) as Error & { where?: string };
    expect(err.message).toBe('option "num_clusters" must be an integer between 2 and 1000 (got "0")');
    expect(err.where).toMatch(/^PL\/pgSQL function ml_create_model\(text,text,text,jsonb\) line \d+ at RAISE$/);
    const hinted = (await errorOf(t.pool, `SELECT ml_create_model('m', 'kmeans', $1, '{"exclude": ["customer_id"], "warm_start": true, "batch_size": 5000}')`, [Q])) as Error & { where?: string };
    expect(hinted.where!.split('\n')).toHaveLength(1);
  });

  it('nothing was enqueued by the refused requests', async () => {
    const [r] = await rows<{ n: string }>(t.pool, 'SELECT count(*) AS n FROM ml.jobs');
    expect(Number(r!.n)).toBe(0);
  });
});

describe('bad data fails the job with a message, and the sidecar keeps serving', () => {
  const failing: [string, string, string, RegExp][] = [
    ['empty result', 'SELECT * FROM demo.customer_features WHERE false', '{"exclude": "customer_id"}', /the training query returned no rows/],
    ['exclude names a missing column', Q, '{"exclude": ["customer_idd"]}', /column "customer_idd" listed in "exclude" is not in the training query/],
    ['no feature column left', 'SELECT customer_id FROM demo.customer_features', '{"exclude": "customer_id"}', /no feature columns are left/],
    ['too many categories with category_overflow fail', Q, '{"num_clusters": 3, "category_overflow": "fail"}', /column "customer_id" has 793 distinct values \(max_categories is 100\); list it in "exclude"/],
    ['NaN in a feature', `SELECT CASE WHEN frequency = 3 THEN 'NaN'::float8 ELSE monetary END AS m, frequency FROM demo.customer_features`, '{}', /column "m" has the value NaN/],
    ['num_clusters above the row count', 'SELECT frequency FROM demo.customer_features LIMIT 5', '{"num_clusters": 6}', /option "num_clusters" \(6\) must not exceed the number of training rows \(5\)/],
    ['a volatile function that writes', `SELECT frequency, nextval('public.counter') AS x FROM demo.customer_features`, '{}', /training query must only read data \(it ran in a read-only transaction\): cannot execute nextval\(\)/],
    ['values too large to standardize', 'SELECT (CASE WHEN frequency > 5 THEN 1.7e308 ELSE -1.7e308 END)::float8 AS huge, monetary FROM demo.customer_features', '{"num_clusters": 2}', /column "huge" has values too large to standardize/],
    ['every feature constant', `SELECT 7 AS seven, 'x'::text AS letter, NULL::float8 AS empty FROM demo.customer_features`, '{"num_clusters": 3}', /every feature column is constant \(seven, letter\): every row is the same point/],
    ['custom init column not boolean', Q, '{"kmeans_init_method": "custom", "kmeans_init_col": "frequency", "exclude": "customer_id"}', /column "frequency" named by "kmeans_init_col" must be boolean/],
  ];
  for (const [what, query, options, message] of failing) {
    it(`${what}: the job ends failed with a message that names the fix`, async () => {
      const [{ job }] = (await rows<{ job: string }>(t.pool, `SELECT ml_create_model('bad', 'kmeans', $1, $2::jsonb) AS job`, [query, options])) as [{ job: string }];
      const err = await errorOf(t.pool, 'SELECT ml_wait($1)', [job]);
      expect(err.message).toMatch(new RegExp(`job ${job} failed: `));
      expect(err.message).toMatch(message);
      const [j] = await rows<{ status: string; error: string; attempts: number }>(t.pool, 'SELECT status, error, attempts FROM ml_jobs WHERE id = $1', [job]);
      expect(j!.status).toBe('failed');
      expect(j!.error).toMatch(message);
      expect(j!.attempts).toBe(1); // deterministic: no retry
    });
  }

  // Checked by PostgreSQL in the requester's session, before anything is enqueued.
  const refused: [string, string, RegExp][] = [
    ['SQL syntax error', 'SELEC 1', /syntax error at or near "SELEC"/],
    ['missing table', 'SELECT * FROM nowhere', /relation "nowhere" does not exist/],
    ['two statements', 'SELECT 1 AS x; SELECT 2 AS y', /training_query must be exactly one SELECT statement/],
    ['non-SELECT training query', 'DELETE FROM demo.orders RETURNING sales', /training_query must be one SELECT statement that only reads data: syntax error/],
    ['data-modifying CTE', 'WITH d AS (DELETE FROM demo.orders RETURNING sales) SELECT * FROM d', /training_query must be one SELECT statement that only reads data: WITH clause containing a data-modifying statement must be at the top level/],
    ['SELECT INTO', 'SELECT frequency INTO public.copied FROM demo.customer_features', /training_query must be exactly one SELECT statement/],
    ['duplicate column names', 'SELECT frequency, frequency FROM demo.customer_features', /the training query has two columns named "frequency"; give them distinct names with AS/],
  ];
  for (const [what, query, message] of refused) {
    it(`${what}: ml_create_model raises at once and enqueues nothing`, async () => {
      const before = (await rows<{ n: string }>(t.pool, 'SELECT count(*) AS n FROM ml.jobs'))[0]!.n;
      const err = await errorOf(t.pool, `SELECT ml_create_model('bad', 'kmeans', $1, '{}')`, [query]);
      expect(err.message).toMatch(message);
      expect((await rows<{ n: string }>(t.pool, 'SELECT count(*) AS n FROM ml.jobs'))[0]!.n).toBe(before);
    });
  }

  it('CALL ml_train raising the job\'s error shows one CONTEXT line', async () => {
    const err = (await errorOf(t.pool, `CALL ml_train('bad', 'kmeans', 'SELECT 1 AS one FROM demo.customer_features', '{"num_clusters": 2}')`)) as Error & { where?: string; code?: string };
    expect(err.message).toMatch(/^job \d+ failed: every feature column is constant \(one\)/);
    expect(err.code).toBe('P0001');
    expect(err.where).toMatch(/^PL\/pgSQL function ml_train\(text,text,text,jsonb\) line \d+ at RAISE$/);
  });

  it('a model of more than 100 features trains (said at ml_create_model); its functions take the row as one jsonb and agree with ml_predict', async () => {
    const cols = Array.from({ length: 120 }, (_, i) => `round(monetary * ${(i % 7) + 1} + frequency * ${i}, 2) AS c${i + 1}`).join(', ');
    const query = `SELECT customer_id, segment, ${cols} FROM demo.customer_features`;
    const c = await t.pool.connect();
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      await c.query(`CALL ml_train('wide', 'kmeans', $1, '{"num_clusters": 3, "seed": 1, "exclude": ["customer_id"]}')`, [query]);
      await c.query(`CALL ml_train('wide_lr', 'linear_reg', $1, '{"input_label_cols": ["c1"], "exclude": ["customer_id"], "data_split_method": "no_split"}')`, [query]);
    } finally {
      c.release();
    }
    expect(notices.some((n) => /the query has about 121 feature columns, more than the 100 arguments a SQL function may take: the generated functions will take the row as one jsonb argument, e.g. SELECT wide_predict\(to_jsonb\(t\)\)/.test(n))).toBe(true);
    const [sig] = await rows<{ args: string }>(t.pool, `SELECT pg_get_function_identity_arguments('wide_predict'::regproc) AS args`);
    expect(sig!.args).toBe('features jsonb');
    const [k] = await rows<{ differ: string; n: string }>(t.pool,
      `SELECT count(*) FILTER (WHERE p.centroid_id <> wide_predict(to_jsonb(w))) AS differ, count(*) AS n
         FROM ml_predict('wide', $1) p JOIN (${query}) w ON w.customer_id = p.input->>'customer_id'`, [query]);
    expect(k).toEqual({ differ: '0', n: '793' });
    const [lr] = await rows<{ worst: number; r2: number }>(t.pool,
      `SELECT max(abs(p.predicted_value - wide_lr_predict(to_jsonb(w)))) AS worst, (SELECT r2_score FROM ml_evaluate('wide_lr')) AS r2
         FROM ml_predict('wide_lr', $1) p JOIN (${query}) w ON w.customer_id = p.input->>'customer_id'`, [query]);
    expect(lr!.worst).toBeLessThan(1e-6);
    expect(lr!.r2).toBeGreaterThan(0.99); // c1 is a linear function of the other columns
    const explained = await rows(t.pool, `SELECT * FROM ml_explain_predict('wide_lr', $1) LIMIT 2`, [query]);
    expect(explained).toHaveLength(2);
  });

  it('a training query ending in a -- comment trains', async () => {
    await t.pool.query(`CALL ml_train('commented', 'kmeans', E'SELECT frequency, monetary FROM demo.customer_features -- the features', '{"num_clusters": 2}')`);
    const [m] = await rows<{ state: string }>(t.pool, `SELECT state FROM ml_models WHERE model_name = 'commented'`);
    expect(m!.state).toBe('ready');
  });

  it('the data survived the data-modifying training queries', async () => {
    const [r] = await rows<{ n: string }>(t.pool, 'SELECT count(*) AS n FROM demo.orders');
    expect(Number(r!.n)).toBe(9994);
  });

  it('after all those failures the sidecar still trains; feature names with spaces, quotes and mixed case work', async () => {
    await t.pool.query(`CREATE TABLE public."Odd Table" ("Total Spend" float8, "it's" text, "MixedCase" int)`);
    await t.pool.query(`INSERT INTO public."Odd Table" SELECT monetary, region, frequency FROM demo.customer_features`);
    await t.pool.query(`CALL ml_train('odd', 'kmeans', 'SELECT * FROM "Odd Table"', '{"num_clusters": 3, "seed": 5}')`);
    const [r] = await rows<{ agree: string; total: string }>(
      t.pool,
      `SELECT count(*) FILTER (WHERE p.centroid_id = odd_predict(("input"->>'Total Spend')::float8, "input"->>'it''s', ("input"->>'MixedCase')::float8)) AS agree,
              count(*) AS total
         FROM ml_predict('odd', 'SELECT * FROM "Odd Table"') p`,
    );
    expect(Number(r!.total)).toBe(793);
    expect(Number(r!.agree)).toBe(793);
  });

  it('tolerates an all-NULL column (dropped, with a warning) and a constant column', async () => {
    await t.pool.query(
      `CALL ml_train('tolerant', 'kmeans', 'SELECT monetary, NULL::float8 AS empty, 1 AS constant, NULL::text AS nothing FROM demo.customer_features', '{"num_clusters": 2, "seed": 1}')`,
    );
    const info = await rows<{ input: string; type: string; warning: string | null }>(t.pool, `SELECT input, type, warning FROM ml_feature_info('tolerant')`);
    expect(info.find((f) => f.input === 'empty')).toMatchObject({ type: 'dropped', warning: expect.stringMatching(/every value is NULL/) });
    expect(info.find((f) => f.input === 'nothing')).toMatchObject({ type: 'dropped' });
    expect(info.find((f) => f.input === 'constant')).toMatchObject({ type: 'numeric', warning: expect.stringMatching(/constant/) });
    const [p] = await rows<{ n: string }>(t.pool, `SELECT count(*) AS n FROM ml_predict('tolerant', 'SELECT monetary, 1 AS constant FROM demo.customer_features')`);
    expect(Number(p!.n)).toBe(793);
  });

  it('predict and evaluate name the missing model or column', async () => {
    expect((await errorOf(t.pool, `SELECT * FROM ml_predict('nosuch', 'SELECT 1')`)).message).toBe('model "nosuch" does not exist');
    expect((await errorOf(t.pool, `SELECT * FROM ml_evaluate('nosuch')`)).message).toBe('model "nosuch" does not exist');
    const err = await errorOf(t.pool, `SELECT * FROM ml_predict('odd', 'SELECT "Total Spend", "MixedCase" FROM "Odd Table"')`);
    expect(err.message).toBe(`the query has no column "it's", which model "odd" was trained on`);
  });

  it('ml_wait names an unknown job', async () => {
    expect((await errorOf(t.pool, 'SELECT ml_wait(987654)')).message).toMatch(/job 987654 does not exist/);
  });
});
