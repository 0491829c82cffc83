import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, freshDatabase, rows, type TestDb } from './helpers.ts';

// ml_rfm against the definitions computed here from the raw transactions, on the demo orders.

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('clv', { demo: true });
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

  it('names a missing column, a bad unit and a bad date', async () => {
    expect((await errorOf(t.pool, `SELECT * FROM ml_rfm('SELECT customer_id, order_date FROM demo.orders', '{"value_col": "amount"}')`)).message)
      .toMatch(/column "amount" is not in the transactions query \(its columns: customer_id, order_date\)/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_rfm('SELECT customer_id, order_date FROM demo.orders', '{"time_unit": "year"}')`)).message)
      .toMatch(/option "time_unit" must be one of day, week, month/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_rfm('SELECT customer_id, order_date FROM demo.orders', '{"calibration_end": "2016-13-01"}')`)).message)
      .toMatch(/option "calibration_end" must be a date such as "1997-09-30"/);
  });
});
