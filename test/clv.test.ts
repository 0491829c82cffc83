import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedPurchases, logLikelihood, pAlive, type BgNbd } from '../src/models/clv/bgnbd.ts';
import { expectedSpend, type GammaGamma } from '../src/models/clv/gamma-gamma.ts';
import { paretoExpectedPurchases, paretoPAlive, type ParetoNbd } from '../src/models/clv/pareto-nbd.ts';
import { errorOf, freshDatabase, rows, type TestDb } from './helpers.ts';

// ml_rfm against the definitions computed here from the raw transactions, on the demo orders;
// a clv model trained from SQL: its stored likelihood, its SQL functions and ml_predict against
// the fitted parameters evaluated here, the calibration/holdout table against its definition.

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('clv', { demo: true });
  await t.worker();
});
afterAll(async () => t?.close());

interface Tx {
  customer_id: string;
  day: string; // ISO date
  sales: number;
}

/** Per customer: the purchase days and their totals, up to `end` (inclusive). */
function days(txs: Tx[], end: string, from = ''): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const x of txs) {
    if (x.day > end || x.day <= from) continue;
    const m = out.get(x.customer_id) ?? new Map<string, number>();
    m.set(x.day, (m.get(x.day) ?? 0) + x.sales);
    out.set(x.customer_id, m);
  }
  return out;
}
const dayNumber = (d: string) => Date.parse(`${d}T00:00:00Z`) / 86_400_000;

describe('ml_rfm', () => {
  it('frequency, recency, age, monetary value and the holdout counts follow their definitions (weeks, with a calibration end)', async () => {
    const txs = await rows<Tx>(t.pool, `SELECT customer_id, to_char(order_date, 'YYYY-MM-DD') AS day, sales::float8 AS sales FROM demo.orders`);
    const got = await rows<{ customer_id: string; frequency: number; recency: number; age: number; monetary_value: number; holdout_frequency: number; holdout_monetary_value: number }>(t.pool,
      `SELECT * FROM ml_rfm('SELECT customer_id, order_date, sales FROM demo.orders', '{"calibration_end": "2016-12-31", "time_unit": "week"}')`);
    const cal = days(txs, '2016-12-31');
    const last = txs.reduce((m, x) => (x.day > m ? x.day : m), '');
    const hold = days(txs, last, '2016-12-31');
    expect(got.length).toBe(cal.size);
    expect(got.length).toBeGreaterThan(700);
    const end = dayNumber('2016-12-31');
    for (const r of got) {
      const ds = [...cal.get(r.customer_id)!.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
      const first = dayNumber(ds[0]![0]);
      const lastDay = dayNumber(ds[ds.length - 1]![0]);
      const repeats = ds.slice(1).map(([, v]) => v);
      expect(r.frequency).toBe(ds.length - 1);
      expect(r.recency).toBeCloseTo((lastDay - first) / 7, 10);
      expect(r.age).toBeCloseTo((end - first) / 7, 10);
      expect(r.monetary_value).toBeCloseTo(repeats.length ? repeats.reduce((a, b) => a + b, 0) / repeats.length : 0, 6);
      const h = [...(hold.get(r.customer_id)?.values() ?? [])];
      expect(r.holdout_frequency).toBe(h.length);
      expect(r.holdout_monetary_value).toBeCloseTo(h.length ? h.reduce((a, b) => a + b, 0) / h.length : 0, 6);
    }
  });

  it('scores 1-5 by percent rank (ties share a score) and names the segment', async () => {
    const r = await rows<{ frequency: number; f_score: number; r_score: number; rfm_segment: string }>(t.pool,
      `SELECT frequency, f_score, r_score, rfm_segment FROM ml_rfm('SELECT customer_id, order_date, sales FROM demo.orders')`);
    const byFrequency = new Map<number, Set<number>>();
    for (const x of r) byFrequency.set(x.frequency, (byFrequency.get(x.frequency) ?? new Set()).add(x.f_score));
    for (const scores of byFrequency.values()) expect(scores.size).toBe(1);
    const sorted = [...r].sort((a, b) => a.frequency - b.frequency);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.f_score).toBeGreaterThanOrEqual(sorted[i - 1]!.f_score);
    expect(new Set(r.map((x) => x.f_score))).toEqual(new Set([1, 2, 3, 4, 5]));
    const champions = r.filter((x) => x.rfm_segment === 'Champions');
    expect(champions.length).toBeGreaterThan(0);
    for (const c of champions) expect(c.r_score >= 4 && c.f_score >= 4).toBe(true);
  });

  it('returns customer_id as text, or as the type of its third argument', async () => {
    await t.pool.query(`CREATE TABLE public.tx_ids AS SELECT (hashtext(customer_id) & 65535)::bigint AS id, order_date, sales FROM demo.orders`);
    const [text] = await rows<{ t: string }>(t.pool, `SELECT pg_typeof(customer_id)::text AS t FROM ml_rfm('SELECT id, order_date, sales FROM public.tx_ids') LIMIT 1`);
    expect(text!.t).toBe('text');
    const typed = await rows<{ t: string; customer_id: string }>(t.pool, `SELECT pg_typeof(customer_id)::text AS t, customer_id FROM ml_rfm('SELECT id, order_date, sales FROM public.tx_ids', '{}', NULL::bigint) ORDER BY customer_id LIMIT 3`);
    expect(typed.map((r) => r.t)).toEqual(['bigint', 'bigint', 'bigint']);
    expect(Number(typed[0]!.customer_id)).toBeLessThan(Number(typed[2]!.customer_id)); // ordered as numbers
  });

  it('names a missing column, a bad unit and a bad date', async () => {
    expect((await errorOf(t.pool, `SELECT * FROM ml_rfm('SELECT customer_id, order_date FROM demo.orders', '{"value_col": "amount"}')`)).message)
      .toMatch(/column "amount" is not in the transactions query \(its columns: customer_id, order_date\)/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_rfm('SELECT customer_id, order_date FROM demo.orders', '{"time_unit": "year"}')`)).message)
      .toMatch(/option "time_unit" must be one of day, week, month/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_rfm('SELECT customer_id, order_date FROM demo.orders', '{"calibration_end": "2016-13-01"}')`)).message)
      .toMatch(/option "calibration_end" must be a date such as "1997-09-30"/);
  });
});

describe('clv models', () => {
  const TX = 'SELECT customer_id, order_date, sales FROM demo.orders';
  let purchase: BgNbd;
  let spend: GammaGamma;
  let rfm: { customer_id: string; frequency: number; recency: number; age: number; monetary_value: number; holdout_frequency: number }[];

  beforeAll(async () => {
    await t.pool.query(`CALL ml_train('btyd', 'clv', $1, '{"time_unit": "week", "calibration_end": "2016-12-31", "penalizer": 0.001}')`, [TX]);
    const w = await rows<{ processed_input: string; weight: number }>(t.pool, `SELECT processed_input, weight FROM ml_weights('btyd')`);
    const v = (k: string) => w.find((x) => x.processed_input === k)!.weight;
    purchase = { r: v('r'), alpha: v('alpha'), a: v('a'), b: v('b') };
    spend = { p: v('p'), q: v('q'), gamma: v('gamma') };
    rfm = await rows(t.pool, `SELECT * FROM ml_rfm($1, '{"time_unit": "week", "calibration_end": "2016-12-31"}')`, [TX]);
  });

  it('was fitted on the RFM summary ml_rfm gives: its stored log-likelihood and BIC are those of its parameters on those rows', async () => {
    const data = { x: Float64Array.from(rfm, (r) => r.frequency), tx: Float64Array.from(rfm, (r) => r.recency), T: Float64Array.from(rfm, (r) => r.age) };
    const [e] = await rows<{ log_likelihood: number; bic: number }>(t.pool, `SELECT log_likelihood, bic FROM ml_evaluate('btyd')`);
    const ll = logLikelihood(purchase, data);
    expect(e!.log_likelihood).toBeCloseTo(ll, 6);
    expect(e!.bic).toBeCloseTo(4 * Math.log(rfm.length) - 2 * ll, 6);
    for (const p of [purchase.r, purchase.alpha, purchase.a, purchase.b, spend.p, spend.q, spend.gamma]) expect(p).toBeGreaterThan(0);
  });

  it('the generated functions equal the fitted model evaluated here, on every customer; ml_predict gives the same CLV', async () => {
    const got = await rows<{ customer_id: string; p_alive: number; e: number; s: number; clv: number; clv_d: number }>(t.pool,
      `SELECT customer_id, btyd_p_alive(frequency, recency, age) AS p_alive, btyd_expected_purchases(frequency, recency, age) AS e,
              btyd_expected_spend(frequency, monetary_value) AS s, btyd_clv(frequency, recency, age, monetary_value) AS clv,
              btyd_clv(frequency => frequency, recency => recency, age => age, monetary_value => monetary_value, horizon => 6, discount_rate => 0.01) AS clv_d
         FROM ml_rfm($1, '{"time_unit": "week", "calibration_end": "2016-12-31"}')`, [TX]);
    expect(got.length).toBe(rfm.length);
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));
    got.forEach((g, i) => {
      const r = rfm[i]!;
      const e = expectedPurchases(purchase, r.frequency, r.recency, r.age, 52);
      const s = expectedSpend(spend, r.frequency, r.monetary_value);
      let discounted = 0;
      for (let k = 1; k <= 6; k++) discounted += ((expectedPurchases(purchase, r.frequency, r.recency, r.age, k) - expectedPurchases(purchase, r.frequency, r.recency, r.age, k - 1)) * s) / 1.01 ** k;
      expect(rel(g.p_alive, pAlive(purchase, r.frequency, r.recency, r.age))).toBeLessThan(1e-9);
      expect(rel(g.e, e)).toBeLessThan(1e-9);
      expect(rel(g.s, s)).toBeLessThan(1e-12);
      expect(rel(g.clv, e * s)).toBeLessThan(1e-9);
      expect(rel(g.clv_d, discounted)).toBeLessThan(1e-9);
    });
    // ml_predict summarises the transactions itself (up to their last day: a later age) and scores
    const p = await rows<{ customer_id: string; clv: number; frequency: number; recency: number; age: number; monetary_value: number; p_alive: number }>(t.pool,
      `SELECT input->>'customer_id' AS customer_id, predicted_value AS clv, (input->>'frequency')::float8 AS frequency, (input->>'recency')::float8 AS recency,
              (input->>'age')::float8 AS age, (input->>'monetary_value')::float8 AS monetary_value, (details->>'p_alive')::float8 AS p_alive
         FROM ml_predict('btyd', $1)`, [TX]);
    expect(p.length).toBe(793);
    for (const x of p) {
      const e = expectedPurchases(purchase, x.frequency, x.recency, x.age, 52) * expectedSpend(spend, x.frequency, x.monetary_value);
      expect(rel(x.clv, e)).toBeLessThan(1e-9);
      expect(rel(x.p_alive, pAlive(purchase, x.frequency, x.recency, x.age))).toBeLessThan(1e-9);
    }
  });

  it('the calibration/holdout table: customers by calibration repeats, actual and expected holdout purchases', async () => {
    const table = await rows<{ frequency: string; customers: string; actual_holdout_purchases: number; expected_holdout_purchases: number }>(t.pool, `SELECT * FROM ml_calibration_holdout('btyd')`);
    expect(table.map((r) => r.frequency)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7+']);
    const holdoutWeeks = (Date.parse('2017-12-30') - Date.parse('2016-12-31')) / 86_400_000 / 7;
    table.forEach((row, f) => {
      const members = rfm.filter((r) => (f === 7 ? r.frequency >= 7 : r.frequency === f));
      expect(Number(row.customers)).toBe(members.length);
      if (!members.length) return;
      expect(row.actual_holdout_purchases).toBeCloseTo(members.reduce((s, r) => s + r.holdout_frequency, 0) / members.length, 10);
      const expected = members.reduce((s, r) => s + expectedPurchases(purchase, r.frequency, r.recency, r.age, holdoutWeeks), 0) / members.length;
      expect(row.expected_holdout_purchases).toBeCloseTo(expected, 8);
    });
  });

  it('MBG/NBD: its SQL functions equal the model evaluated here; auto picks the purchase model with the smaller holdout error', async () => {
    await t.pool.query(`CALL ml_train('btyd_auto', 'clv', $1, '{"purchase_model": "auto", "time_unit": "week", "calibration_end": "2016-12-31", "penalizer": 0.001, "spend_model": "none"}')`, [TX]);
    const [{ metrics, artifact }] = (await rows<{ metrics: { purchase_model: string; candidates: { purchase_model: string; mean_absolute_error: number }[] }; artifact: { purchase_model: string; purchase: BgNbd } }>(t.pool,
      `SELECT metrics, artifact FROM ml.models WHERE model_name = 'btyd_auto'`)) as [{ metrics: { purchase_model: string; candidates: { purchase_model: string; mean_absolute_error: number }[] }; artifact: { purchase_model: string; purchase: BgNbd } }];
    expect(metrics.candidates.map((c) => c.purchase_model)).toEqual(['bg_nbd', 'mbg_nbd', 'pareto_nbd']);
    const best = [...metrics.candidates].sort((p, q) => p.mean_absolute_error - q.mean_absolute_error)[0]!;
    expect(artifact.purchase_model).toBe(best.purchase_model);
    const [{ mae }] = (await rows<{ mae: number }>(t.pool, `SELECT mean_absolute_error AS mae FROM ml_evaluate('btyd_auto')`)) as [{ mae: number }];
    expect(mae).toBeCloseTo(best.mean_absolute_error, 10);
    await t.pool.query(`CALL ml_train('btyd_mbg', 'clv', $1, '{"purchase_model": "mbg_nbd", "time_unit": "week", "penalizer": 0.01, "spend_model": "none"}')`, [TX]);
    const [{ artifact: mbg }] = (await rows<{ artifact: { purchase: BgNbd } }>(t.pool, `SELECT artifact FROM ml.models WHERE model_name = 'btyd_mbg'`)) as [{ artifact: { purchase: BgNbd } }];
    expect(mbg.purchase.variant).toBe('mbg_nbd');
    const got = await rows<{ frequency: number; recency: number; age: number; p: number; e: number; s: number | null }>(t.pool,
      `SELECT frequency, recency, age, btyd_mbg_p_alive(frequency, recency, age) AS p, btyd_mbg_expected_purchases(frequency, recency, age, 26) AS e,
              btyd_mbg_expected_spend(frequency, monetary_value) AS s
         FROM ml_rfm($1)`, [TX]);
    for (const g of got) {
      expect(Math.abs(g.p - pAlive(mbg.purchase, g.frequency, g.recency, g.age))).toBeLessThan(1e-12);
      expect(Math.abs(g.e - expectedPurchases(mbg.purchase, g.frequency, g.recency, g.age, 26)) / g.e).toBeLessThan(1e-9);
      expect(g.s).toBeNull(); // spend_model none
    }
    // one-time buyers may be gone too under MBG/NBD (never under BG/NBD)
    expect(pAlive(mbg.purchase, 0, 0, 100)).toBeLessThan(1);
  });

  it('Pareto/NBD: P(alive), expected purchases and CLV in SQL equal the model evaluated here, on every customer', async () => {
    await t.pool.query(`CALL ml_train('btyd_pareto', 'clv', $1, '{"purchase_model": "pareto_nbd", "time_unit": "week", "penalizer": 0.01}')`, [TX]);
    const [{ artifact }] = (await rows<{ artifact: { purchase_model: string; purchase: ParetoNbd; spend: GammaGamma } }>(t.pool, `SELECT artifact FROM ml.models WHERE model_name = 'btyd_pareto'`)) as [{ artifact: { purchase_model: string; purchase: ParetoNbd; spend: GammaGamma } }];
    expect(artifact.purchase_model).toBe('pareto_nbd');
    const got = await rows<{ frequency: number; recency: number; age: number; monetary_value: number; p: number; e: number; clv: number }>(t.pool,
      `SELECT frequency, recency, age, monetary_value, btyd_pareto_p_alive(frequency, recency, age) AS p,
              btyd_pareto_expected_purchases(frequency, recency, age, 26) AS e, btyd_pareto_clv(frequency, recency, age, monetary_value, 26) AS clv
         FROM ml_rfm($1)`, [TX]);
    expect(got.length).toBe(793);
    for (const g of got) {
      const e = paretoExpectedPurchases(artifact.purchase, g.frequency, g.recency, g.age, 26);
      expect(Math.abs(g.p - paretoPAlive(artifact.purchase, g.frequency, g.recency, g.age))).toBeLessThan(1e-9);
      expect(Math.abs(g.e - e) / Math.max(e, 1e-12)).toBeLessThan(1e-9);
      expect(Math.abs(g.clv - e * expectedSpend(artifact.spend, g.frequency, g.monetary_value)) / Math.max(g.clv, 1e-12)).toBeLessThan(1e-9);
    }
    const [w] = await rows<{ n: string }>(t.pool, `SELECT count(*) AS n FROM ml_weights('btyd_pareto') WHERE class_label = 'purchases' AND processed_input IN ('r', 'alpha', 's', 'beta')`);
    expect(w!.n).toBe('4');
  });

  it('what a review found: a trailing comment, a DMY DateStyle, a name taken by another function, a horizon too long to converge', async () => {
    // a training query ending in a -- comment
    expect((await rows(t.pool, `SELECT * FROM ml_rfm($1)`, [`${TX} -- every order`])).length).toBe(793);
    // calibration_end given in a session that writes dates day-first: the split is the same day
    const c = await t.pool.connect();
    try {
      await c.query(`SET DateStyle = 'SQL, DMY'`);
      await c.query(`CALL ml_train('btyd_dmy', 'clv', $1, '{"time_unit": "day", "calibration_end": "2017-01-02", "spend_model": "none", "penalizer": 0.01}')`, [`${TX} -- all`]);
    } finally {
      await c.query('RESET DateStyle');
      c.release();
    }
    const [{ d }] = (await rows<{ d: number }>(t.pool, `SELECT (metrics->>'holdout_duration')::float8 AS d FROM ml.models WHERE model_name = 'btyd_dmy'`)) as [{ d: number }];
    expect(d).toBe((Date.parse('2017-12-30') - Date.parse('2017-01-02')) / 86_400_000);
    // a function already holding one of the four names: refused when queued, not after training
    await t.pool.query(`CREATE FUNCTION public.taken_clv(float8, float8, float8, float8, float8, float8) RETURNS float8 LANGUAGE sql AS 'SELECT 1.0'`);
    expect((await errorOf(t.pool, `SELECT ml_create_model('taken', 'clv', $1)`, [TX])).message).toMatch(/taken_clv/);
    expect(Number((await rows<{ n: string }>(t.pool, `SELECT count(*) AS n FROM ml.models WHERE model_name = 'taken'`))[0]!.n)).toBe(0);
    // a horizon ~1e10 times a customer's age: no value rather than a wrong one
    const [far] = await rows<{ e: number | null }>(t.pool, `SELECT btyd_expected_purchases(1, 10, 100, 1e12) AS e`);
    expect(far!.e).toBeNull();
  });

  it('extreme customers give finite values in SQL; bad options and a missing column are named', async () => {
    const [x] = await rows<Record<string, number>>(t.pool,
      `SELECT btyd_p_alive(300, 500, 500) AS a, btyd_expected_purchases(300, 10, 500, 520) AS b, btyd_expected_purchases(0, 0, 0) AS c,
              btyd_expected_purchases(50, 0.5, 0.5, 5200) AS d, btyd_clv(300, 500, 500, 1e6) AS e, btyd_expected_spend(0, 0) AS f`);
    for (const [k, v] of Object.entries(x!)) expect(Number.isFinite(v) && v >= 0, `${k} = ${v}`).toBe(true);
    expect((await errorOf(t.pool, `SELECT ml_create_model('c2', 'clv', $1, '{"purchase_model": "markov"}')`, [TX])).message).toMatch(/option "purchase_model" must be one of bg_nbd/);
    expect((await errorOf(t.pool, `SELECT ml_create_model('c2', 'clv', $1, '{"time_col": "ship"}')`, [TX])).message).toMatch(/column "ship" is not in the transactions query \(its columns: customer_id, order_date, sales\)/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_predict('btyd', 'SELECT customer_id, order_date FROM demo.orders')`)).message).toMatch(/the transactions query has no column "sales", which model "btyd" was trained on/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_predict('btyd', $1, '{"horizon": -1}')`, [TX])).message).toMatch(/option "horizon" must be a number between 0 and 100000/);
  });
});
