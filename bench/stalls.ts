import type { BenchDb } from './lib.ts';
import { Child } from '../test/processes.ts';

// The longest event-loop stall of a sidecar during each kind of job (the worker measures it with
// perf_hooks.monitorEventLoopDelay and logs it as event_loop_max_ms when the job is ready).
// While the loop stalls, heartbeats, progress, cancellation and other jobs wait; the target is
// 250 ms. The baseline is the same sidecar's stall on a trivial job.

export interface StallResult {
  job: string;
  rows: number;
  seconds: number;
  stallMs: number;
}

interface Case {
  job: string;
  rows: number;
  table: string;
  type: string;
  options: Record<string, unknown>;
}

export async function benchStalls(db: BenchDb, o: { rows: number; densityRows: number }): Promise<StallResult[]> {
  await db.pool.query(`DROP TABLE IF EXISTS stall_points, stall_density, stall_wide`);
  await db.pool.query(`SELECT setseed(0.5)`);
  await db.pool.query(`CREATE TABLE stall_points AS
    SELECT random() AS a, random() AS b, random() AS c, random() AS d, (random() < 0.3) AS churned
      FROM generate_series(1, $1)`, [o.rows]);
  await db.pool.query(`CREATE TABLE stall_density AS
    SELECT (g % 5) + random() * 0.3 AS a, (g % 5) * 0.5 + random() * 0.3 AS b, (g % 3) + random() * 0.3 AS c
      FROM generate_series(1, $1) g`, [o.densityRows]);
  // 400 columns: PCA's eigen-decomposition of a 400 x 400 covariance (~0.75 s of one call)
  await db.pool.query(`CREATE TABLE stall_wide AS SELECT ${Array.from({ length: 400 }, (_, j) => `sin(g * ${j + 1}.37) + random() AS c${j}`).join(', ')} FROM generate_series(1, $1) g`, [o.densityRows]);
  const cases: Case[] = [
    { job: 'trivial (baseline)', rows: 20, table: '(SELECT a, b FROM stall_points LIMIT 20) s', type: 'kmeans', options: { num_clusters: 2, stability_runs: 0 } },
    { job: 'k-means k=8', rows: o.rows, table: 'stall_points', type: 'kmeans', options: { num_clusters: 8, exclude: 'churned', seed: 1 } },
    { job: 'HDBSCAN', rows: o.densityRows, table: 'stall_density', type: 'hdbscan', options: { min_cluster_size: 50 } },
    { job: 'boosted trees', rows: o.rows, table: 'stall_points', type: 'boosted_tree_classifier', options: { input_label_cols: ['churned'] } },
    { job: 'logistic regression', rows: o.rows, table: 'stall_points', type: 'logistic_reg', options: { input_label_cols: ['churned'] } },
    { job: 'auto (candidates, metrics, SHAP)', rows: o.rows, table: 'stall_points', type: 'auto', options: { input_label_cols: ['churned'] } },
    { job: 'PCA, 400 columns', rows: o.densityRows, table: 'stall_wide', type: 'pca', options: {} },
  ];
  const sidecar = new Child(['worker'], { DATABASE_URL: db.roles.sidecarUrl, SQLML_READER_URL: db.roles.readerUrl, SQLML_LOG_LEVEL: 'info' });
  await sidecar.waitFor(/sidecar started/);
  const out: StallResult[] = [];
  try {
    for (const [i, c] of cases.entries()) {
      const { rows } = await db.pool.query(`SELECT ml_create_model($1, $2, $3, $4) AS job`, [
        `stall_${i}`,
        c.type,
        `SELECT * FROM ${c.table}`,
        JSON.stringify(c.options),
      ]);
      const job = String(rows[0].job);
      await db.pool.query('SELECT ml_wait($1)', [job]);
      const text = await sidecar.waitFor(new RegExp(`job ready \\{"job":"${job}"[^\\n]*\\n`), 10_000);
      const line = text.match(new RegExp(`job ready (\\{"job":"${job}"[^\\n]*)\\n`))![1]!;
      const fields = JSON.parse(line) as { seconds: number; event_loop_max_ms: number };
      out.push({ job: c.job, rows: c.rows, seconds: fields.seconds, stallMs: fields.event_loop_max_ms });
    }
  } finally {
    sidecar.kill('SIGTERM');
    await sidecar.exited();
  }
  return out;
}

export function printStalls(results: StallResult[]): void {
  const base = results[0]!.stallMs;
  console.log('\nlongest event-loop stall per job (target 250 ms; baseline: a trivial job)');
  for (const r of results) {
    console.log(`  ${r.job.padEnd(34)} ${String(r.rows).padStart(9)} rows  ${r.seconds.toFixed(2).padStart(7)} s  stall ${String(r.stallMs).padStart(6)} ms  (${(r.stallMs / Math.max(1, base)).toFixed(1)}x baseline)`);
  }
}
