import type { BenchDb } from './lib.ts';
import { fmt, median, seconds } from './lib.ts';
import { copySeconds, makeBlobs } from './training.ts';

// ml_describe and ml_correlation on rows x 8 numeric columns, against two baselines measured in
// the same run: the rows copied out to a client (what pandas' read_sql must do before it can
// describe anything) and the statistics written by hand as one aggregate query.

export interface ExploreResult {
  rows: number;
  copySeconds: number;
  handSeconds: number;
  describeSeconds: number;
  correlationSeconds: number;
}

export async function benchExplore(db: BenchDb, o: { rows: number }): Promise<ExploreResult> {
  const table = `bench_explore_${o.rows}`;
  await makeBlobs(db, table, o.rows);
  const cols = Array.from({ length: 8 }, (_, j) => `f${j + 1}`);
  const hand = `SELECT count(*), ${cols
    .map((c) => `count(${c}), avg(${c}), stddev_samp(${c}), min(${c}), max(${c}), percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY ${c})`)
    .join(', ')} FROM ${table}`;
  const describe = `SELECT * FROM ml_describe('SELECT * FROM ${table}')`;
  const correlation = `SELECT * FROM ml_correlation('SELECT * FROM ${table}')`;
  await db.pool.query(`SELECT count(*) FROM ${table}`); // warm the cache
  const times: number[][] = [[], [], [], []];
  for (let round = 0; round < 3; round++) {
    times[0]!.push(await copySeconds(db, `SELECT * FROM ${table}`));
    for (const [i, q] of [hand, describe, correlation].entries()) times[i + 1]!.push((await seconds(() => db.pool.query(q)))[0]);
  }
  await db.pool.query(`DROP TABLE ${table}`);
  const [copy, handS, describeS, correlationS] = times.map(median) as [number, number, number, number];
  return { rows: o.rows, copySeconds: copy, handSeconds: handS, describeSeconds: describeS, correlationSeconds: correlationS };
}

export function printExplore(r: ExploreResult): void {
  console.log(
    `exploring ${r.rows} rows x 8: COPY to a client ${fmt(r.copySeconds)} s | hand-written aggregates ${fmt(r.handSeconds)} s` +
      ` | ml_describe ${fmt(r.describeSeconds)} s (ratio to COPY ${fmt(r.describeSeconds / r.copySeconds)}, to hand ${fmt(r.describeSeconds / r.handSeconds)})` +
      ` | ml_correlation (28 pairs, Pearson and Spearman) ${fmt(r.correlationSeconds)} s (ratio to COPY ${fmt(r.correlationSeconds / r.copySeconds)})`,
  );
}
