import type { BenchDb } from './lib.ts';
import { fmt, median, seconds, startSidecar } from './lib.ts';
import { makeBlobs } from './training.ts';

// In-database scoring of every row, nearest of 8 centroids: the generated function and
// ml_predict against a hand-written LATERAL expression of the 8 squared distances (the
// baseline), all measured in the same run on the same model.

export interface ScoringResult {
  rows: number;
  lateralSeconds: number;
  functionSeconds: number;
  predictSeconds: number;
  agree: boolean;
  parallelPlan: boolean;
}

export async function benchScoring(db: BenchDb, o: { rows: number }): Promise<ScoringResult> {
  const table = `bench_score_${o.rows}`;
  await makeBlobs(db, table, o.rows);
  const sidecar = await startSidecar(db);
  const name = `score_${o.rows}`;
  await db.pool.query(`CALL ml_train($1, 'kmeans', $2, '{"num_clusters": 8, "seed": 1, "n_init": 1, "stability_runs": 0}')`, [
    name,
    `SELECT * FROM ${table} TABLESAMPLE BERNOULLI (10) REPEATABLE (1)`,
  ]);
  sidecar.kill('SIGTERM');
  await sidecar.exited();
  const { rows } = await db.pool.query(`SELECT m.artifact FROM ml.models m WHERE m.model_name = $1`, [name]);
  const a = rows[0].artifact as { features: { name: string; mean: number; scale: number }[]; centroids: number[][] };
  // The baseline: preprocessing and distances written out by hand, least() in a LATERAL.
  const z = a.features.map((f) => `(b.${f.name} - ${f.mean}) / ${f.scale}`);
  const d = a.centroids.map((c, i) => `${c.map((v, j) => `(${z[j]} - ${v})^2`).join(' + ')} AS d${i + 1}`);
  const least = `least(${a.centroids.map((_, i) => `d${i + 1}`).join(', ')})`;
  const pick = `CASE ${least} ${a.centroids.map((_, i) => `WHEN d${i + 1} THEN ${i + 1}`).join(' ')} END`;
  const lateral = `SELECT sum(l.c) FROM ${table} b CROSS JOIN LATERAL (SELECT ${pick} AS c FROM (SELECT ${d.join(', ')}) x) l`;
  const args = a.features.map((f) => f.name).join(', ');
  const fn = `SELECT sum(${name}_predict(${args})) FROM ${table}`;
  const predict = `SELECT sum(centroid_id) FROM ml_predict('${name}', 'SELECT * FROM ${table}')`;
  await db.pool.query(lateral); // warm the cache
  // Three rounds of the three queries, interleaved, and each one's median: this machine's speed
  // drifts by tens of percent over tens of seconds, which one run of each turned into the ratio.
  const times: [number[], number[], number[]] = [[], [], []];
  const sums = new Set<string>();
  for (let round = 0; round < 3; round++) {
    for (const [i, q] of [lateral, fn, predict].entries()) {
      const [s, r] = await seconds(() => db.pool.query(q));
      times[i]!.push(s);
      sums.add(String(r.rows[0].sum));
    }
  }
  const plan = await db.pool.query(`EXPLAIN ${fn}`);
  return {
    rows: o.rows,
    lateralSeconds: median(times[0]),
    functionSeconds: median(times[1]),
    predictSeconds: median(times[2]),
    agree: sums.size === 1,
    parallelPlan: plan.rows.some((r) => /Gather/.test(r['QUERY PLAN'])),
  };
}

export function printScoring(r: ScoringResult): void {
  console.log(
    `scoring ${r.rows} rows, k=8: LATERAL baseline ${fmt(r.lateralSeconds)} s | generated function ${fmt(r.functionSeconds)} s (ratio ${fmt(r.functionSeconds / r.lateralSeconds)})` +
      ` | ml_predict ${fmt(r.predictSeconds)} s (ratio ${fmt(r.predictSeconds / r.lateralSeconds)}) | same assignments: ${r.agree} | parallel plan: ${r.parallelPlan}`,
  );
}
