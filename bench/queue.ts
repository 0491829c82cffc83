import type { BenchDb } from './lib.ts';
import { fmt, median, seconds } from './lib.ts';
import { Child } from '../test/processes.ts';

// Queue latency (enqueue -> claimed, by the server's clock) with LISTEN/NOTIFY, whose baseline
// is the polling backstop's interval (2 s here), and the time for many small jobs with one
// sidecar and with two.

export interface QueueResult {
  notifyMedianMs: number;
  jobs: number;
  oneSidecarSeconds: number;
  twoSidecarsSeconds: number;
}

async function sidecars(db: BenchDb, count: number, poll: number): Promise<Child[]> {
  const cs = Array.from({ length: count }, () => new Child(['worker', '--poll-interval', String(poll)], { DATABASE_URL: db.roles.sidecarUrl, SQLML_READER_URL: db.roles.readerUrl, SQLML_LOG_LEVEL: 'info' }));
  await Promise.all(cs.map((c) => c.waitFor(/sidecar started/)));
  await new Promise((r) => setTimeout(r, 300));
  return cs;
}

async function stop(cs: Child[]): Promise<void> {
  for (const c of cs) c.kill('SIGTERM');
  await Promise.all(cs.map((c) => c.exited()));
}

async function latency(db: BenchDb, poll: number, tag: string): Promise<number> {
  const cs = await sidecars(db, 1, poll);
  const ms: number[] = [];
  for (let i = 0; i < 15; i++) {
    const { rows } = await db.pool.query(`SELECT ml_create_model($1, 'kmeans', 'SELECT x::float8 AS x FROM generate_series(1, 20) x', '{"num_clusters": 2, "n_init": 1, "stability_runs": 0}') AS job`, [`lat_${tag}_${i}`]);
    await db.pool.query('SELECT ml_wait($1)', [rows[0].job]);
    const r = await db.pool.query(`SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM ml.jobs WHERE id = $1`, [rows[0].job]);
    ms.push(Number(r.rows[0].ms));
  }
  await stop(cs);
  return median(ms);
}

async function batch(db: BenchDb, count: number, jobs: number, tag: string): Promise<number> {
  await db.pool.query(`CREATE TABLE IF NOT EXISTS bench_small AS SELECT random() AS a, random() AS b, random() AS c FROM generate_series(1, 300)`);
  const cs = await sidecars(db, count, 500);
  const [s] = await seconds(async () => {
    const { rows } = await db.pool.query(
      `SELECT ml_create_model('small_${tag}_' || i, 'kmeans', 'SELECT * FROM bench_small', '{"num_clusters": 3}') AS job FROM generate_series(1, $1) i`,
      [jobs],
    );
    for (const r of rows) await db.pool.query('SELECT ml_wait($1)', [r.job]);
  });
  await stop(cs);
  return s;
}

export async function benchQueue(db: BenchDb, o: { jobs: number }): Promise<QueueResult> {
  return {
    notifyMedianMs: await latency(db, 2000, 'notify'),
    jobs: o.jobs,
    oneSidecarSeconds: await batch(db, 1, o.jobs, 'one'),
    twoSidecarsSeconds: await batch(db, 2, o.jobs, 'two'),
  };
}

export function printQueue(r: QueueResult): void {
  console.log(
    `queue: enqueue -> claimed median ${fmt(r.notifyMedianMs, 1)} ms with LISTEN/NOTIFY (polling backstop interval: 2000 ms)` +
      ` | ${r.jobs} jobs of 300 rows: one sidecar ${fmt(r.oneSidecarSeconds)} s, two sidecars ${fmt(r.twoSidecarsSeconds)} s (ratio ${fmt(r.twoSidecarsSeconds / r.oneSidecarSeconds)})`,
  );
}
