import type { BenchDb } from './lib.ts';
import { fmt, median, peakRssMb, seconds, secondsToReady, startSidecar } from './lib.ts';

// In-database k-means ("training_mode": "in_database") on a table partitioned by hash, against
// one full sequential scan of the same table measured in the same run (the physical limit for
// one pass over the rows): per Lloyd step, end to end, and the sidecar's peak RSS, which must
// not grow with the rows. With `foreign`, the partitions are postgres_fdw foreign tables on
// the same server (loopback): each step then runs as one shipped aggregate per partition.

export interface InDatabaseResult {
  rows: number;
  partitions: number;
  foreign: boolean;
  scanSeconds: number; // SELECT sum(f1), ..., sum(f8): every column of every row, once
  countSeconds: number; // SELECT count(*)
  stepSeconds: number; // median Lloyd step
  steps: number;
  endToEndSeconds: number;
  sampleRows: number;
  bytesPerIteration: number;
  peakRssMb: number | null;
  aggregates: number; // one per foreign partition, or one
  fenced: boolean;
}

export async function benchInDatabase(db: BenchDb, o: { rows: number; partitions: number; k: number; foreign?: boolean }): Promise<InDatabaseResult> {
  const table = `bench_part_${o.rows}${o.foreign ? '_fdw' : ''}`;
  const dims = 8;
  const cols = Array.from({ length: dims }, (_, j) => `f${j + 1}`);
  await db.pool.query(`DROP TABLE IF EXISTS ${table} CASCADE`);
  await db.pool.query(`CREATE TABLE ${table} (id bigint, ${cols.map((c) => `${c} float8`).join(', ')}) PARTITION BY HASH (id)`);
  if (o.foreign) {
    const u = new URL(db.url);
    await db.pool.query(`CREATE EXTENSION IF NOT EXISTS postgres_fdw`);
    await db.pool.query(`DROP SERVER IF EXISTS bench_loop CASCADE`);
    await db.pool.query(`CREATE SERVER bench_loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '${u.hostname}', port '${u.port || 5432}', dbname '${u.pathname.slice(1) || 'postgres'}', async_capable 'true', batch_size '10000', fetch_size '10000')`);
    await db.pool.query(`CREATE USER MAPPING FOR PUBLIC SERVER bench_loop OPTIONS (user '${decodeURIComponent(u.username)}', password '${decodeURIComponent(u.password)}')`);
  }
  for (let p = 0; p < o.partitions; p++) {
    if (o.foreign) {
      await db.pool.query(`DROP TABLE IF EXISTS ${table}_shard${p}`);
      await db.pool.query(`CREATE UNLOGGED TABLE ${table}_shard${p} (id bigint, ${cols.map((c) => `${c} float8`).join(', ')})`);
      await db.pool.query(`CREATE FOREIGN TABLE ${table}_p${p} PARTITION OF ${table} FOR VALUES WITH (MODULUS ${o.partitions}, REMAINDER ${p}) SERVER bench_loop OPTIONS (table_name '${table}_shard${p}')`);
    } else {
      await db.pool.query(`CREATE UNLOGGED TABLE ${table}_p${p} PARTITION OF ${table} FOR VALUES WITH (MODULUS ${o.partitions}, REMAINDER ${p})`);
    }
  }
  // 8 blobs in 8 dimensions (as bench/training.ts makes them), written in slices of 1M rows
  const blobs = cols.map((_, j) => `((i % 8) * ${7 + j} % 23) + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())`);
  await db.pool.query(`SELECT setseed(0.5)`);
  for (let from = 1; from <= o.rows; from += 1_000_000) {
    const to = Math.min(o.rows, from + 999_999);
    // straight into the shard tables when foreign (routing rows through postgres_fdw is not what is measured)
    if (o.foreign) {
      for (let p = 0; p < o.partitions; p++) {
        await db.pool.query(`INSERT INTO ${table}_shard${p} SELECT i, ${blobs.join(', ')} FROM generate_series(${from}, ${to}) i WHERE i % ${o.partitions} = ${p}`);
      }
    } else await db.pool.query(`INSERT INTO ${table} SELECT i, ${blobs.join(', ')} FROM generate_series(${from}, ${to}) i`);
  }
  for (let p = 0; p < o.partitions; p++) await db.pool.query(`VACUUM ANALYZE ${table}${o.foreign ? `_shard${p}` : `_p${p}`}`);
  if (o.foreign) await db.pool.query(`ANALYZE ${table}`);
  const scans: number[] = [];
  const counts: number[] = [];
  for (let r = 0; r < 3; r++) {
    scans.push((await seconds(() => db.pool.query(`SELECT ${cols.map((c) => `sum(${c})`).join(', ')} FROM ${table}`)))[0]);
    counts.push((await seconds(() => db.pool.query(`SELECT count(*) FROM ${table}`)))[0]);
  }
  const sidecar = await startSidecar(db);
  const name = `bench_indb_${o.rows}${o.foreign ? '_fdw' : ''}`;
  const options = { num_clusters: o.k, seed: 1, training_mode: 'in_database' }; // a user's defaults otherwise
  const endToEnd = await secondsToReady(db, `SELECT ml_create_model($1, 'kmeans', $2, $3) AS job`, [name, `SELECT ${cols.join(', ')} FROM ${table}`, JSON.stringify(options)]);
  const rss = peakRssMb(sidecar.process.pid!);
  sidecar.kill('SIGTERM');
  await sidecar.exited();
  const { rows: info } = await db.pool.query<{ ms: number }>(`SELECT duration_ms AS ms FROM ml_training_info($1)`, [name]);
  const { rows: m } = await db.pool.query(
    `SELECT m.metrics, cardinality(j.step_queries) AS queries, j.step_fenced AS fenced FROM ml.models m JOIN ml.jobs j ON j.id = m.job_id WHERE m.model_name = $1 ORDER BY m.version DESC LIMIT 1`, [name]);
  const metrics = m[0].metrics;
  return {
    rows: o.rows,
    partitions: o.partitions,
    foreign: o.foreign === true,
    scanSeconds: median(scans),
    countSeconds: median(counts),
    stepSeconds: median(info.map((i) => i.ms)) / 1000,
    steps: info.length,
    endToEndSeconds: endToEnd,
    sampleRows: metrics.sample_rows,
    bytesPerIteration: metrics.bytes_per_iteration,
    peakRssMb: rss,
    aggregates: m[0].queries,
    fenced: m[0].fenced,
  };
}

export function printInDatabase(r: InDatabaseResult): void {
  console.log(
    `in-database k-means, ${r.rows} x 8 in ${r.partitions} ${r.foreign ? 'postgres_fdw foreign (loopback)' : 'local'} partitions, k=8: ` +
      `per Lloyd step ${fmt(r.stepSeconds)} s vs one sequential scan ${fmt(r.scanSeconds)} s (sum of every column; count(*) ${fmt(r.countSeconds)} s): ` +
      `${fmt(r.stepSeconds / r.scanSeconds, 1)}x | ${r.steps} steps, ${fmt(r.endToEndSeconds)} s end to end | sample ${r.sampleRows} rows, ` +
      `${r.aggregates} aggregate(s) per step${r.fenced ? '' : ' (shipped form)'}, ${r.bytesPerIteration} bytes back per step | sidecar peak RSS ${fmt(r.peakRssMb, 0)} MB (target < 150 MB)`,
  );
}
