import { trainHdbscanOffThread } from '../src/models/hdbscan/off-thread.ts';
import { treeMaxDims } from '../src/models/hdbscan/train.ts';
import { Random } from '../src/util/random.ts';
import { fmt, peakRssMb, secondsToReady, startSidecar, type BenchDb } from './lib.ts';

// HDBSCAN at scale. (1) The scaling curve of the fit (k-d tree passes on both threads, up to
// treeMaxDims(rows) dimensions; the exact O(n^2) passes above), against the O(n^2) passes measured
// in the same run, with identical labels checked wherever both ran. (2) The goals end to end
// (enqueue -> ready) through a sidecar in a child process, with its peak RSS.

export interface CurvePoint {
  rows: number;
  dims: number;
  data: string;
  treeSeconds: number | null;
  exactSeconds: number | null;
  sameLabels: boolean | null;
  clusters: number;
}

/** Gaussian-like blobs (sum of three uniforms) in d dimensions, or 0/1 one-hot columns of `groups` categorical inputs. */
function points(n: number, d: number, kind: 'blobs' | 'onehot', seed: number): Float64Array {
  const rng = new Random(seed);
  const X = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = i % 6;
    if (kind === 'onehot') {
      // 8 categorical inputs of 5 categories each: one 1 per group, the segment's favourite likelier
      for (let g = 0; g < d / 5; g++) X[i * d + g * 5 + (rng.next() < 0.6 ? (c + g) % 5 : Math.floor(rng.next() * 5))] = 1;
      continue;
    }
    for (let j = 0; j < d; j++) X[i * d + j] = c * 2.5 * ((j + c) % 2) + (rng.next() + rng.next() + rng.next() - 1.5);
  }
  return X;
}

async function fit(X: Float64Array, n: number, d: number, exact: boolean, minSamples: number) {
  const t0 = performance.now();
  const m = await trainHdbscanOffThread(X, n, d, { minClusterSize: Math.max(5, Math.round(n / 100)), minSamples, method: 'eom', epsilon: 0, distance: 'euclidean', exact }, 1);
  return { seconds: (performance.now() - t0) / 1000, labels: m.labels, k: m.k };
}

export async function benchHdbscanCurve(o: { sizes: (dims: number) => number[]; dims: number[]; exact: (rows: number, dims: number) => boolean; minSamples: number }): Promise<CurvePoint[]> {
  const out: CurvePoint[] = [];
  const cases: [number, 'blobs' | 'onehot'][] = [...o.dims.map((d) => [d, 'blobs'] as [number, 'blobs']), [40, 'onehot']];
  for (const [d, kind] of cases) {
    for (const n of o.sizes(d)) {
      const treeUsable = d <= treeMaxDims(n);
      if (!treeUsable && !o.exact(n, d)) continue;
      const X = points(n, d, kind, n + d);
      const fast = treeUsable ? await fit(X, n, d, false, o.minSamples) : null;
      const exact = o.exact(n, d) ? await fit(X, n, d, true, o.minSamples) : null;
      out.push({
        rows: n, dims: d, data: kind === 'onehot' ? '8 categories x 5 (one-hot)' : 'blobs',
        treeSeconds: fast?.seconds ?? null, exactSeconds: exact?.seconds ?? null,
        sameLabels: fast && exact ? fast.labels.every((l, i) => l === exact.labels[i]) : null,
        clusters: (fast ?? exact)!.k,
      });
      console.log(`  ${n} x ${d} (${kind}): tree ${fmt(fast?.seconds ?? null)} s, exact ${fmt(exact?.seconds ?? null)} s`);
    }
  }
  return out;
}

export function printHdbscanCurve(points: CurvePoint[], minSamples: number): void {
  console.log(`\nHDBSCAN fit (min_cluster_size 1% of rows, min_samples ${minSamples}; k-d tree up to 24 dimensions at 10,000 rows, 20 more per doubling, at most 64, both threads) vs the O(n^2) passes, same run`);
  console.log('rows       dims  data                          tree s   O(n^2) s  ratio   same labels  clusters');
  for (const p of points) {
    const ratio = p.treeSeconds && p.exactSeconds ? p.exactSeconds / p.treeSeconds : null;
    console.log(`${String(p.rows).padEnd(10)} ${String(p.dims).padEnd(5)} ${p.data.padEnd(29)} ${fmt(p.treeSeconds).padStart(7)} ${fmt(p.exactSeconds).padStart(9)} ${ratio ? `${fmt(ratio, 1)}x`.padStart(6) : '   n/a'}   ${String(p.sameLabels ?? 'n/a').padEnd(12)} ${p.clusters}`);
  }
}

export interface GoalResult {
  rows: number;
  dims: number;
  options: Record<string, unknown>;
  seconds: number;
  peakRssMb: number | null;
}

/** Enqueue -> ready through a sidecar of its own, with its peak resident memory. */
export async function benchHdbscanGoals(db: BenchDb, cases: { rows: number; dims: number; options: Record<string, unknown> }[]): Promise<GoalResult[]> {
  const out: GoalResult[] = [];
  for (const c of cases) {
    const table = `hd_${c.rows}_${c.dims}`;
    const cols = Array.from({ length: c.dims }, (_, j) => `(g % 6) * 2.5 * (((g % 6) + ${j}) % 2) + (random() + random() + random() - 1.5) AS x${j + 1}`);
    await db.pool.query(`DROP TABLE IF EXISTS ${table}`);
    await db.pool.query(`SELECT setseed(0.25)`);
    await db.pool.query(`CREATE TABLE ${table} AS SELECT ${cols.join(', ')} FROM generate_series(1, $1) g`, [c.rows]);
    await db.pool.query(`ANALYZE ${table}`);
    const sidecar = await startSidecar(db);
    try {
      const seconds = await secondsToReady(db, `SELECT ml_create_model($1, 'hdbscan', $2, $3) AS job`, [table, `SELECT * FROM ${table}`, JSON.stringify(c.options)]);
      out.push({ ...c, seconds, peakRssMb: peakRssMb(sidecar.process.pid!) });
    } finally {
      sidecar.kill('SIGTERM');
      await sidecar.exited();
    }
    console.log(`  ${c.rows} x ${c.dims} ${JSON.stringify(c.options)}: ${fmt(out[out.length - 1]!.seconds)} s`);
  }
  return out;
}

export function printHdbscanGoals(goals: GoalResult[]): void {
  console.log('\nHDBSCAN end to end (enqueue -> ready; sidecar in its own process)');
  console.log('rows       dims  options                                        seconds   sidecar peak RSS');
  for (const g of goals) console.log(`${String(g.rows).padEnd(10)} ${String(g.dims).padEnd(5)} ${JSON.stringify(g.options).padEnd(46)} ${fmt(g.seconds).padStart(7)}   ${g.peakRssMb === null ? 'n/a' : `${Math.round(g.peakRssMb)} MB`}`);
}
