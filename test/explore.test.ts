import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, freshDatabase, rows, type TestDb } from './helpers.ts';

// ml_describe and ml_correlation against figures this test computes itself from the rows.

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('explore', { demo: true });
  await t.pool.query(`CREATE TABLE public.ex AS
    SELECT i AS id, CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 13)::float8 * 1.5 END AS a, (i % 13) * 3 + (i % 2) AS b,
           (i * 7919 % 101)::numeric(6,1) AS c, CASE WHEN i % 3 = 0 THEN 'x' WHEN i % 3 = 1 THEN 'y' ELSE NULL END AS cat,
           (i % 4 = 0) AS flag
      FROM generate_series(1, 500) i
    UNION ALL SELECT 1, 1.5, 4, 41.0, 'y', false`); // row 1 once more: one duplicate
});
afterAll(async () => t?.close());

const num = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
};
/** Linear interpolation between closest ranks (pandas' default, PostgreSQL's percentile_cont). */
const quantile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  const h = (s.length - 1) * p;
  const lo = Math.floor(h);
  return s[lo]! + (h - lo) * ((s[Math.min(lo + 1, s.length - 1)] ?? s[lo]!) - s[lo]!);
};
const pearson = (x: number[], y: number[]) => {
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
};
/** Average ranks (1-based), ties sharing the mean of their positions. */
const ranks = (xs: number[]) => {
  const order = xs.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const r = new Array<number>(xs.length);
  for (let s = 0; s < order.length; ) {
    let e = s;
    while (e + 1 < order.length && order[e + 1]!.v === order[s]!.v) e++;
    for (let k = s; k <= e; k++) r[order[k]!.i] = (s + e) / 2 + 1;
    s = e + 1;
  }
  return r;
};

describe('ml_describe', () => {
  it('per column: counts, NULLs, distinct, min, max, mean, sample stddev and quartiles as computed here; top values; duplicates', async () => {
    const data = await rows<{ id: number; a: number | null; b: number; c: string; cat: string | null; flag: boolean }>(t.pool, 'SELECT * FROM public.ex');
    const d = await rows<{ column_name: string; data_type: string; count: string; nulls: string; distinct_count: string | null; min: string | null; max: string | null; mean: number | null; stddev: number | null; p25: number | null; p50: number | null; p75: number | null; top_values: { value: string; count: number }[] | null; rows: string; duplicate_rows: string }>(
      t.pool,
      `SELECT * FROM ml_describe('SELECT * FROM public.ex') ORDER BY ordinal`,
    );
    expect(d.map((r) => r.column_name)).toEqual(['id', 'a', 'b', 'c', 'cat', 'flag']);
    expect(d.map((r) => r.data_type)).toEqual(['integer', 'double precision', 'integer', 'numeric', 'text', 'boolean']);
    const a = num(data.map((r) => r.a));
    const ra = d[1]!;
    expect(Number(ra.count)).toBe(a.length);
    expect(Number(ra.nulls)).toBe(data.length - a.length);
    expect(Number(ra.distinct_count)).toBe(new Set(a).size);
    expect(Number(ra.min)).toBe(Math.min(...a));
    expect(Number(ra.max)).toBe(Math.max(...a));
    expect(ra.mean).toBeCloseTo(mean(a), 10);
    expect(ra.stddev).toBeCloseTo(sd(a), 10);
    expect(ra.p25).toBeCloseTo(quantile(a, 0.25), 10);
    expect(ra.p50).toBeCloseTo(quantile(a, 0.5), 10);
    expect(ra.p75).toBeCloseTo(quantile(a, 0.75), 10);
    const cats = data.map((r) => r.cat).filter((x): x is string => x !== null);
    const rc = d[4]!;
    expect(Number(rc.nulls)).toBe(data.length - cats.length);
    expect(rc.top_values).toEqual(
      [...new Set(cats)].map((v) => ({ value: v, count: cats.filter((x) => x === v).length })).sort((x, y) => y.count - x.count || (x.value < y.value ? -1 : 1)),
    );
    expect(d[5]!.top_values!.map((x) => x.value).sort()).toEqual(['false', 'true']);
    const seen = new Map<string, number>();
    for (const r of data) seen.set(JSON.stringify(r), (seen.get(JSON.stringify(r)) ?? 0) + 1);
    const dups = [...seen.values()].reduce((s, k) => s + k - 1, 0);
    expect(Number(d[0]!.rows)).toBe(data.length);
    expect(Number(d[0]!.duplicate_rows)).toBe(dups);
    expect(dups).toBeGreaterThan(0);
  });

  it('refuses unknown options and describes a query on the demo data', async () => {
    expect((await errorOf(t.pool, `SELECT * FROM ml_describe('SELECT 1 AS x', '{"tops": 3}')`)).message).toMatch(/unknown option "tops"; allowed: top/);
    const d = await rows<{ column_name: string; top_values: unknown[] | null }>(t.pool, `SELECT * FROM ml_describe('SELECT * FROM demo.customer_features', '{"top": 2}')`);
    expect(d).toHaveLength(8);
    expect(d.find((r) => r.column_name === 'region')!.top_values).toHaveLength(2);
  });
});

describe('ml_correlation', () => {
  it('Pearson and Spearman of every numeric pair as computed here, and the redundant pairs', async () => {
    const data = await rows<{ a: number | null; b: number; c: string }>(t.pool, 'SELECT a, b, c FROM public.ex');
    const c = await rows<{ column_a: string; column_b: string; pearson: number; spearman: number; n: string; redundant: boolean }>(
      t.pool,
      `SELECT * FROM ml_correlation('SELECT a, b, c, cat FROM public.ex')`,
    );
    expect(c.map((r) => `${r.column_a}-${r.column_b}`)).toEqual(['a-b', 'a-c', 'b-c']);
    const both = data.filter((r) => r.a !== null);
    const ab = c[0]!;
    expect(Number(ab.n)).toBe(both.length);
    expect(ab.pearson).toBeCloseTo(pearson(both.map((r) => r.a!), both.map((r) => r.b)), 10);
    expect(ab.redundant).toBe(true); // b = 2 a (+ noise of 1)
    // Spearman with no NULLs in the pair: Pearson of the average ranks
    const bc = c[2]!;
    const bs = data.map((r) => r.b);
    const cs = data.map((r) => Number(r.c));
    expect(bc.spearman).toBeCloseTo(pearson(ranks(bs), ranks(cs)), 10);
    expect(bc.pearson).toBeCloseTo(pearson(bs, cs), 10);
    expect(bc.redundant).toBe(false);
    const strict = await rows<{ redundant: boolean }>(t.pool, `SELECT redundant FROM ml_correlation('SELECT a, b FROM public.ex', '{"threshold": 1}')`);
    expect(strict).toEqual([{ redundant: false }]);
    expect((await errorOf(t.pool, `SELECT * FROM ml_correlation('SELECT 1 AS x, ''a'' AS y')`)).message).toMatch(/needs at least two numeric columns; the query has 1/);
  });

  it('above spearman_sample rows, Spearman comes from a sample of about that many rows (close to the exact value), Pearson from every row', async () => {
    await t.pool.query(`CREATE TABLE public.big AS SELECT i, (i % 97) + (i * 7919 % 1009) / 100.0 AS u, ((i % 97) + (i * 104729 % 1013) / 50.0) ^ 3 AS v FROM generate_series(1, 20000) i`);
    const exact = await rows<{ pearson: number; spearman: number; n: string }>(t.pool, `SELECT pearson, spearman, n FROM ml_correlation('SELECT u, v FROM public.big', '{"spearman_sample": 20000}')`);
    const sampled = await rows<{ pearson: number; spearman: number; n: string }>(t.pool, `SELECT pearson, spearman, n FROM ml_correlation('SELECT u, v FROM public.big', '{"spearman_sample": 2000}')`);
    const data = await rows<{ u: number; v: number }>(t.pool, 'SELECT u::float8 AS u, v::float8 AS v FROM public.big');
    const us = data.map((d) => d.u);
    const vs = data.map((d) => d.v);
    expect(exact[0]!.spearman).toBeCloseTo(pearson(ranks(us), ranks(vs)), 10);
    expect(sampled[0]!.pearson).toBeCloseTo(pearson(us, vs), 10);
    expect(sampled[0]!.n).toBe('20000');
    expect(Math.abs(sampled[0]!.spearman - exact[0]!.spearman)).toBeLessThan(0.03);
    expect(sampled[0]!.spearman).not.toBe(exact[0]!.spearman);
    expect((await errorOf(t.pool, `SELECT * FROM ml_correlation('SELECT u, v FROM public.big', '{"spearman_sample": 10}')`)).message).toMatch(/option "spearman_sample" must be an integer between 1000 and 1000000000/);
  });

  it('a constant column (4.761904762 on every row, whose float sums do not cancel exactly) has no correlation, not rounding noise', async () => {
    const r = await rows<{ pearson: number | null; spearman: number | null; redundant: boolean }>(t.pool,
      `SELECT pearson, spearman, redundant FROM ml_correlation('SELECT b, 4.761904762 AS margin FROM public.ex')`);
    expect(r).toEqual([{ pearson: null, spearman: null, redundant: false }]);
  });
});

describe('the column probe behind ml_describe, ml_correlation and every API function that runs a query', () => {
  it('reads every column and its type without running the query, whatever the columns are called', async () => {
    const cols = await rows<{ ordinal: number; name: string; type: string }>(
      t.pool,
      `SELECT ordinal, name, type::regtype::text AS type FROM ml.query_columns($1) ORDER BY ordinal`,
      [`SELECT 1 AS x, 'a'::text AS y, 2.5::float8 AS sqlml_probe, true AS q, now()::date AS d, 1 / (b - b) AS boom FROM public.ex`],
    );
    expect(cols).toEqual([
      { ordinal: 1, name: 'x', type: 'integer' },
      { ordinal: 2, name: 'y', type: 'text' },
      { ordinal: 3, name: 'sqlml_probe', type: 'double precision' },
      { ordinal: 4, name: 'q', type: 'boolean' },
      { ordinal: 5, name: 'd', type: 'date' },
      { ordinal: 6, name: 'boom', type: 'integer' },
    ]);
  });
});
