import type { BenchDb } from './lib.ts';
import { fmt, median, seconds, secondsToReady, startSidecar } from './lib.ts';

// A clv model end to end (enqueue -> ready: the RFM summary in PostgreSQL, one row per customer
// read by the sidecar, BG/NBD + Gamma-Gamma fitted, functions written) against the RFM GROUP BY
// alone (the same SQL, every column summed), measured in the same run. Goal: <= 1.5x.

export interface ClvResult {
  customers: number;
  transactions: number;
  groupBySeconds: number;
  endToEndSeconds: number;
}

export async function benchClv(db: BenchDb, o: { customers: number }): Promise<ClvResult> {
  const table = `bench_tx_${o.customers}`;
  await db.pool.query(`DROP TABLE IF EXISTS ${table}`);
  await db.pool.query('SELECT setseed(0.3)');
  // 1 to 19 purchases per customer (10 on average) over two years, values up to 100
  await db.pool.query(`CREATE UNLOGGED TABLE ${table} AS
    SELECT c AS customer_id, DATE '2020-01-01' + (random() * 730)::int AS ordered_at, round((random() * 100)::numeric, 2) AS amount
      FROM generate_series(1, ${o.customers}) c, generate_series(1, 1 + c % 19) k`);
  await db.pool.query(`VACUUM ANALYZE ${table}`);
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM ${table}`);
  const transactions = rows[0].n as number;
  const { rows: q } = await db.pool.query(
    `SELECT ml.rfm_sql($1, 'customer_id', 'ordered_at', 'amount', 7, NULL, NULL) AS sql`,
    [`(SELECT * FROM ${table})`],
  );
  // every column summed, so that the planner computes the whole summary (with count(*) alone it
  // drops the window and the averages)
  const groupBy = `SELECT count(*), sum(frequency), sum(recency), sum(age), sum(monetary_value) FROM (${q[0].sql as string}) r`;
  const base: number[] = [];
  const ours: number[] = [];
  const sidecar = await startSidecar(db);
  try {
    for (let round = 0; round < 2; round++) {
      base.push((await seconds(() => db.pool.query(groupBy)))[0]);
      ours.push(await secondsToReady(db, `SELECT ml_create_model('bench_clv_${o.customers}', 'clv', $1, '{"time_unit": "week"}') AS job`, [`SELECT customer_id, ordered_at, amount FROM ${table}`]));
    }
  } finally {
    sidecar.kill('SIGTERM');
    await sidecar.exited();
  }
  await db.pool.query(`DROP TABLE ${table}`);
  return { customers: o.customers, transactions, groupBySeconds: median(base), endToEndSeconds: median(ours) };
}

export function printClv(r: ClvResult): void {
  console.log(
    `clv (BG/NBD + Gamma-Gamma) on ${r.customers} customers, ${r.transactions} transactions: RFM GROUP BY alone ${fmt(r.groupBySeconds)} s | end to end ${fmt(r.endToEndSeconds)} s (ratio ${fmt(r.endToEndSeconds / r.groupBySeconds)}; goal <= 1.5)`,
  );
}
