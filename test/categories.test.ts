import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, freshDatabase, rows, type TestDb } from './helpers.ts';

// A categorical column above max_categories: its frequent categories keep their own one-hot
// columns, the rest share (other) — the figures below are computed from the rows by this test,
// and ml_predict must agree with the generated SQL function row by row, unseen cities included.

let t: TestDb;
const CITIES = 600;

beforeAll(async () => {
  t = await freshDatabase('categories');
  await t.worker();
  // City ranks log-uniform over 1..600 (a Zipf-like long tail: rank 1 ~11% of the rows, most
  // cities a handful of rows); spend and visits depend on the three biggest cities.
  await t.pool.query(`CREATE TABLE public.shops AS
    SELECT i AS id, 'city ' || r AS city,
           (CASE r WHEN 1 THEN 300 WHEN 2 THEN 80 WHEN 3 THEN 150 ELSE 40 END + (i * 7919 % 97) / 4.0)::float8 AS spend,
           (CASE r WHEN 1 THEN 2 WHEN 2 THEN 9 ELSE 5 END + (i * 104729 % 13) / 6.0)::float8 AS visits,
           (r > 20 OR (i * 31 % 10) = 0) AS rural
      FROM (SELECT i, least(${CITIES}, floor(exp(ln(${CITIES}) * ((i * 7919 % 3000) + 0.5) / 3000.0)))::int AS r
              FROM generate_series(1, 3000) i) s`);
});
afterAll(async () => t?.close());

async function train(name: string, type: string, query: string, options: object): Promise<void> {
  await t.pool.query('CALL ml_train($1, $2, $3, $4::jsonb)', [name, type, query, JSON.stringify(options)]);
}

/** The kept cities, as the documented rule says: share >= 1%, at most max_categories - 1, by count. */
async function expectedKept(): Promise<{ kept: string[]; otherShare: number; distinct: number }> {
  const r = await rows<{ city: string; n: string }>(t.pool, 'SELECT city, count(*) AS n FROM public.shops GROUP BY city ORDER BY count(*) DESC, city');
  const kept = r.filter((x) => Number(x.n) >= 0.01 * 3000).slice(0, 99).map((x) => x.city);
  const keptRows = r.filter((x) => kept.includes(x.city)).reduce((s, x) => s + Number(x.n), 0);
  return { kept, otherShare: (3000 - keptRows) / 3000, distinct: r.length };
}

describe('category_overflow: other (the default)', () => {
  it('k-means trains on 600 cities: the frequent ones kept, the rest in (other), as ml_feature_info reports', async () => {
    await train('shops_km', 'kmeans', 'SELECT city, spend, visits FROM public.shops', { num_clusters: 4, seed: 3 });
    const { kept, otherShare, distinct } = await expectedKept();
    expect(distinct).toBeGreaterThan(100); // above max_categories: today's rule would have failed
    expect(kept.length).toBeGreaterThan(5);
    const [info] = await rows<{ category_count: number; kept_categories: number; other_share: number; warning: string | null }>(
      t.pool, `SELECT * FROM ml_feature_info('shops_km') WHERE input = 'city'`);
    expect(info).toMatchObject({ category_count: distinct, kept_categories: kept.length, warning: null });
    expect(info!.other_share).toBeCloseTo(otherShare, 12);
    // The centroids list exactly the kept cities and (other).
    const [c] = await rows<{ categorical_value: { category: string; value: number }[] }>(
      t.pool, `SELECT categorical_value FROM ml_centroids('shops_km') WHERE feature = 'city' LIMIT 1`);
    expect(c!.categorical_value.map((x) => x.category).sort()).toEqual([...kept, '(other)'].sort());
  });

  it('ml_predict and the generated function agree on every row, rare and unseen cities going to (other)', async () => {
    const probe = `SELECT id, city, spend, visits FROM public.shops
                   UNION ALL SELECT -1, 'Atlantis', 45, 5 UNION ALL SELECT -2, NULL, 45, 5`;
    const r = await rows<{ id: number; via_predict: number; via_function: number }>(t.pool,
      `SELECT (p.input->>'id')::int AS id, p.centroid_id AS via_predict,
              shops_km_predict(p.input->>'city', (p.input->>'spend')::float8, (p.input->>'visits')::float8) AS via_function
         FROM ml_predict('shops_km', $1) p`, [probe]);
    expect(r.length).toBe(3002);
    expect(r.filter((x) => x.via_predict !== x.via_function)).toEqual([]);
    // An unseen city, NULL and a rare training city are the same point: all three in (other).
    const { kept } = await expectedKept();
    const [rare] = await rows<{ city: string }>(t.pool, 'SELECT city FROM public.shops WHERE city <> ALL ($1) LIMIT 1', [kept]);
    const [same] = await rows<{ a: number; b: number; c: number; ga: number; gb: number }>(t.pool,
      `SELECT shops_km_predict('Atlantis', 300, 2) AS a, shops_km_predict(NULL, 300, 2) AS b, shops_km_predict($1, 300, 2) AS c,
              shops_km_predict('city 1', 300, 2) AS ga, shops_km_predict('city 1', 40, 5) AS gb`, [rare!.city]);
    expect(same!.a).toBe(same!.c);
    expect(same!.b).toBe(same!.c);
    expect(same!.ga).not.toBe(same!.gb); // the function still separates the big city's customers
  });

  it('HDBSCAN: each segment\'s (other) share in ml_centroids is the share of its members in rare cities', async () => {
    await train('shops_hdb', 'hdbscan', 'SELECT id, city, spend, visits FROM public.shops',
      { exclude: 'id', min_cluster_size: 40, output_table: 'shops_segments' });
    const { kept } = await expectedKept();
    const expected = await rows<{ centroid_id: number; share: number }>(t.pool,
      `SELECT s.centroid_id, avg((c.city <> ALL ($1))::int)::float8 AS share
         FROM shops_segments s JOIN public.shops c USING (id) WHERE s.centroid_id > 0 GROUP BY 1 ORDER BY 1`, [kept]);
    expect(expected.length).toBeGreaterThan(1);
    const got = await rows<{ centroid_id: number; share: number }>(t.pool,
      `SELECT centroid_id, (SELECT (e->>'value')::float8 FROM jsonb_array_elements(categorical_value) e WHERE e->>'category' = '(other)') AS share
         FROM ml_centroids('shops_hdb') WHERE feature = 'city' ORDER BY 1`);
    expect(got.map((g) => g.centroid_id)).toEqual(expected.map((e) => e.centroid_id));
    got.forEach((g, i) => expect(g.share).toBeCloseTo(expected[i]!.share, 9));
  });

  it('supervised (logistic one-hot, boosted trees label-encoded): ml_predict equals the generated function, unseen cities included', async () => {
    const query = 'SELECT city, spend, visits, rural FROM public.shops';
    for (const [name, type] of [['shops_lr', 'logistic_reg'], ['shops_bt', 'boosted_tree_classifier']] as const) {
      await train(name, type, query, { input_label_cols: ['rural'], seed: 5, data_split_method: 'no_split' });
      const args = `p.input->>'city', (p.input->>'spend')::float8, (p.input->>'visits')::float8`;
      const r = await rows<{ label: string; fn_label: string; p: number; f: number }>(t.pool,
        `SELECT p.predicted_label::text AS label, ${name}_predict(${args})::text AS fn_label,
                (SELECT max((e->>'prob')::float8) FROM jsonb_array_elements(p.predicted_probs) e) AS p,
                (SELECT max(v::float8) FROM jsonb_array_elements_text(${name}_predict_probabilities(${args})->'probabilities') v) AS f
           FROM ml_predict('${name}', $1) p`,
        [`${query} UNION ALL SELECT 'Atlantis', 45, 5, true`]);
      expect(r.length).toBe(3001);
      expect(r.filter((x) => x.label !== x.fn_label)).toEqual([]);
      for (const x of r) expect(x.f).toBeCloseTo(x.p, 12);
      // Rural rows are the cities beyond rank 20, mostly in (other): the model must have learnt it.
      const [acc] = await rows<{ accuracy: number }>(t.pool, `SELECT accuracy FROM ml_evaluate('${name}')`);
      expect(acc!.accuracy, type).toBeGreaterThan(0.8);
    }
  });
});

describe('ml_profile pools a wide column the same way', () => {
  it('cities below 1% of the rows are one (other) category, with its share per segment', async () => {
    const { kept } = await expectedKept();
    const segments = `SELECT (id % 3)::text AS seg, city FROM public.shops`;
    const got = await rows<{ segment: string; category: string; segment_value: number }>(t.pool,
      `SELECT segment, category, segment_value FROM ml_profile($1, 'seg') ORDER BY segment, category`, [segments]);
    expect([...new Set(got.map((g) => g.category))].sort()).toEqual([...kept, '(other)'].sort());
    const expected = await rows<{ segment: string; share: number }>(t.pool,
      `SELECT (id % 3)::text AS segment, avg((city <> ALL ($1))::int)::float8 AS share FROM public.shops GROUP BY 1 ORDER BY 1`, [kept]);
    const other = got.filter((g) => g.category === '(other)');
    expect(other.map((o) => o.segment)).toEqual(expected.map((e) => e.segment));
    other.forEach((o, i) => expect(o.segment_value).toBeCloseTo(expected[i]!.share, 12));
    // a column under max_categories is shown value by value, however small the values
    const narrow = await rows<{ n: string }>(t.pool,
      `SELECT count(DISTINCT category) AS n FROM ml_profile($1, 'seg', '{"max_categories": 1000}')`, [segments]);
    expect(Number(narrow[0]!.n)).toBe((await expectedKept()).distinct);
  });
});

describe('category_overflow: fail, and option checks', () => {
  it('"fail" keeps the old refusal, naming the column, the count and the ways out', async () => {
    const [{ job }] = (await rows<{ job: string }>(t.pool,
      `SELECT ml_create_model('shops_fail', 'kmeans', 'SELECT city, spend FROM public.shops', '{"category_overflow": "fail"}') AS job`)) as [{ job: string }];
    const err = await errorOf(t.pool, 'SELECT ml_wait($1)', [job]);
    expect(err.message).toMatch(/column "city" has \d+ distinct values \(max_categories is 100\); list it in "exclude", raise "max_categories", or drop "category_overflow": "fail"/);
  });

  it('min_category_share and max_categories choose what is kept; an ID-like column ends all in (other) with a warning', async () => {
    await train('shops_min', 'kmeans', 'SELECT id::text AS code, city, spend FROM public.shops', { num_clusters: 3, seed: 1, max_categories: 4, min_category_share: 0 });
    const info = await rows<{ input: string; kept_categories: number; other_share: number; warning: string | null }>(
      t.pool, `SELECT input, kept_categories, other_share, warning FROM ml_feature_info('shops_min') WHERE input IN ('code', 'city') ORDER BY input`);
    const { kept } = await expectedKept();
    const top3 = kept.slice(0, 3);
    const [share] = await rows<{ s: number }>(t.pool, 'SELECT avg((city <> ALL ($1))::int)::float8 AS s FROM public.shops', [top3]);
    expect(info[0]).toMatchObject({ input: 'city', kept_categories: 3, warning: null });
    expect(info[0]!.other_share).toBeCloseTo(share!.s, 12);
    // every code appears once: with min_category_share 0 the three smallest codes by value are kept (ties by value)
    expect(info[1]).toMatchObject({ input: 'code', kept_categories: 3 });
    await train('shops_ids', 'kmeans', 'SELECT id::text AS code, spend FROM public.shops', { num_clusters: 3, seed: 1 });
    const [ids] = await rows<{ kept_categories: number; other_share: number; warning: string }>(
      t.pool, `SELECT kept_categories, other_share, warning FROM ml_feature_info('shops_ids') WHERE input = 'code'`);
    expect(ids).toMatchObject({ kept_categories: 0, other_share: 1 });
    expect(ids!.warning).toMatch(/no value holds 1% of the rows: every row is in \(other\)/);
  });

  it('bad values are refused at ml_create_model', async () => {
    expect((await errorOf(t.pool, `SELECT ml_create_model('x', 'kmeans', 'SELECT spend FROM public.shops', '{"category_overflow": "drop"}')`)).message)
      .toMatch(/option "category_overflow" must be one of other, fail \(got "drop"\)/);
    expect((await errorOf(t.pool, `SELECT ml_create_model('x', 'logistic_reg', 'SELECT spend, rural FROM public.shops', '{"min_category_share": 2, "input_label_cols": ["rural"]}')`)).message)
      .toMatch(/option "min_category_share" must be a number between 0 and 1 \(got "2"\)/);
  });
});

describe('boolean and date features', () => {
  it('the generated function takes them typed (m_predict(1.0, true, current_date) resolves), whatever the DateStyle', async () => {
    await t.pool.query(`CREATE TABLE public.visits AS
      SELECT (i % 50)::float8 + (i % 7) / 10.0 AS amount, (i % 3 = 0) AS member,
             DATE '2026-01-01' + (i % 4) AS day
        FROM generate_series(1, 400) i`);
    await train('visits_km', 'kmeans', 'SELECT amount, member, day FROM public.visits', { num_clusters: 3, seed: 2 });
    const [sig] = await rows<{ args: string }>(t.pool, `SELECT pg_get_function_identity_arguments('visits_km_predict'::regproc) AS args`);
    expect(sig!.args).toBe('amount double precision, member boolean, day date');
    const client = await t.pool.connect();
    try {
      const typed = `SELECT visits_km_predict(1.0, true, DATE '2026-01-02') AS a, visits_km_predict(40.0, false, current_date) AS b`;
      const agree = `SELECT count(*) FILTER (WHERE p.centroid_id <> visits_km_predict(v.amount, v.member, v.day))::int AS differ, count(*)::int AS n
                       FROM ml_predict('visits_km', 'SELECT * FROM public.visits') p,
                            LATERAL (SELECT (p.input->>'amount')::float8 AS amount, (p.input->>'member')::boolean AS member, (p.input->>'day')::date AS day) v`;
      const iso = (await client.query(typed)).rows[0];
      expect((await client.query(agree)).rows[0]).toEqual({ differ: 0, n: 400 });
      await client.query(`SET DateStyle = 'SQL, DMY'`);
      expect((await client.query(typed)).rows[0]).toEqual(iso);
      expect((await client.query(agree)).rows[0]).toEqual({ differ: 0, n: 400 });
      // a date category seen in training is one-hot matched (not the all-zero block of an unseen day)
      const [c] = (await client.query(`SELECT categorical_value FROM ml_centroids('visits_km') WHERE feature = 'day' LIMIT 1`)).rows;
      expect(c.categorical_value.map((x: { category: string }) => x.category)).toEqual(['2026-01-01', '2026-01-02', '2026-01-03', '2026-01-04']);
    } finally {
      await client.query('RESET DateStyle');
      client.release();
    }
  });
});
