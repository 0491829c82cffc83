import { aggregateRows } from '../data/load.ts';
import { quoteIdent } from '../db/connect.ts';
import type { FeatureSpec } from '../features/prepare.ts';
import { categoryPosition, num } from '../models/compile.ts';
import type { IterationInfo } from '../models/kmeans/lloyd.ts';
import type { StreamedMetrics } from '../models/kmeans/minibatch.ts';
import type { KmeansModel } from '../models/kmeans/train.ts';
import { UserError } from '../util/errors.ts';
import type { JobContext } from './context.ts';

// k-means where the rows are (option "training_mode": "in_database"): the model fitted on a
// sample in memory (as streaming does) gives the initial centroids, then each Lloyd step over
// every row is one aggregate in the database: the nearest centroid as CASE comparisons of
// squared distances, GROUP BY it, count and sum per model-space dimension. Only k x (d + 3)
// numbers come back per step, whatever the rows; the sidecar holds the sample only. The
// aggregate reads the training function in a reader session, like every read of a job.

export interface InDatabaseResult extends StreamedMetrics {
  seconds: number;
  iterations: IterationInfo[];
  converged: boolean;
  initialCentroids: number[][];
  bytesPerIteration: number;
}

/** Model-space dimensions beyond which a step's query is refused (its text and its sums grow with them). */
const MAX_DIMS = 1000;
const MAX_CLUSTERS = 256;

/**
 * The row in model space as SQL over the row's columns (as transform() computes it): `inner`
 * computes each categorical feature's position once (b<i>), `dims` reads them, so the text grows
 * with the categories, not their square.
 */
export function modelSpaceSql(spec: FeatureSpec, row: string): { inner: string[]; dims: string[] } {
  const inner: string[] = [];
  const dims: string[] = new Array(spec.dims);
  spec.features.forEach((f, i) => {
    const col = `${row}.${quoteIdent(f.name)}`;
    if (f.kind === 'numeric') {
      inner.push(`CASE WHEN ${col} IS NULL THEN ${num(f.mean)} ELSE (${col})::float8 END AS x${i + 1}`);
      dims[f.offset] = `(x${i + 1} - ${num(f.mean)}) * ${num(1 / f.scale)}`;
    } else {
      if (f.encoding === 'label') throw new UserError(`column "${f.name}" is label-encoded; in_database k-means takes one-hot categories`);
      inner.push(`${categoryPosition(col, f, 1, 0)} AS x${i + 1}`);
      f.categories.forEach((_, j) => (dims[f.offset + j] = `CASE WHEN x${i + 1} = ${j + 1} THEN 1.0::float8 ELSE 0.0::float8 END`));
    }
  });
  return { inner, dims };
}

/**
 * One Lloyd step's SQL: per nearest centroid (1-based) its rows, per-dimension sums, sum of
 * squared and of plain distances. OFFSET 0 keeps each layer a subquery: pulled up, the row's
 * model-space expressions would be repeated inside every distance (3x slower, measured). The
 * nearest centroid is CASE least(...) WHEN ...: linear in k (the aggregate reads the training
 * function on this server; nothing here is shipped elsewhere).
 */
function stepSql(from: string, space: { inner: string[]; dims: string[] }, C: Float64Array, k: number): string {
  const { inner, dims } = space;
  const d = dims.length;
  const v = dims.map((e, j) => `${e} AS v${j + 1}`).join(', ');
  const dist = Array.from({ length: k }, (_, c) => {
    const terms = Array.from({ length: d }, (_, j) => `(v${j + 1} - ${num(C[c * d + j]!)}) * (v${j + 1} - ${num(C[c * d + j]!)})`);
    return `${terms.join(' + ')} AS d${c + 1}`;
  }).join(', ');
  const ds = Array.from({ length: k }, (_, c) => `d${c + 1}`);
  const nearest = k === 1 ? '1' : `CASE least(${ds.join(', ')}) ${ds.map((x, c) => `WHEN ${x} THEN ${c + 1}`).join(' ')} END`;
  const sums = Array.from({ length: d }, (_, j) => `sum(v${j + 1})`).join(', ');
  return `SELECT c, count(*)::float8 AS n, ARRAY[${sums}]::float8[] AS sums, sum(dmin) AS within, sum(sqrt(dmin)) AS spread
            FROM (SELECT *, ${nearest} AS c, least(${ds.join(', ')}) AS dmin
                    FROM (SELECT *, ${dist} FROM (SELECT ${v} FROM (SELECT ${inner.join(', ')} FROM ${from} q OFFSET 0) r OFFSET 0) a OFFSET 0) b) s
           GROUP BY c`;
}

interface Step {
  counts: Float64Array;
  sums: Float64Array;
  within: Float64Array;
  spread: Float64Array;
}

async function step(ctx: JobContext, timeoutMs: number, space: { inner: string[]; dims: string[] }, C: Float64Array, k: number): Promise<Step> {
  const d = space.dims.length;
  const { rows } = await aggregateRows<{ c: number; n: number; sums: number[]; within: number; spread: number }>(
    { source: ctx.source, statementTimeoutMs: timeoutMs },
    (from) => stepSql(from, space, C, k),
  );
  const out: Step = { counts: new Float64Array(k), sums: new Float64Array(k * d), within: new Float64Array(k), spread: new Float64Array(k) };
  for (const r of rows) {
    const c = r.c - 1;
    out.counts[c] = r.n;
    out.within[c] = r.within;
    out.spread[c] = r.spread;
    for (let j = 0; j < d; j++) out.sums[c * d + j] = r.sums[j]!;
  }
  if (![...out.sums, ...out.within].every(Number.isFinite)) {
    throw new UserError('a feature column holds NaN, infinite or overflowing values in rows the sample did not see; filter them out in the training query (e.g. WHERE x <> \'NaN\' AND x NOT IN (\'Infinity\', \'-Infinity\'))');
  }
  return out;
}

/**
 * The aggregate casts and compares the feature columns in the reader session: only PostgreSQL's
 * own types may be used there (a user's type could bring its owner's cast or operator along,
 * which the loader never runs either: docs/security.md).
 */
async function assertBuiltinTypes(ctx: JobContext, timeoutMs: number, spec: FeatureSpec): Promise<void> {
  const names = spec.features.map((f) => f.name);
  const { types } = await aggregateRows({ source: ctx.source, statementTimeoutMs: timeoutMs }, (from) => `SELECT ${names.map((n) => `q.${quoteIdent(n)}`).join(', ')} FROM ${from} q LIMIT 0`);
  const { rows } = await ctx.pool.query<{ oid: number; builtin: boolean }>(
    `SELECT t.oid::int AS oid, (t.typnamespace = 'pg_catalog'::regnamespace AND t.typtype = 'b'
            AND t.typname IN ('int2', 'int4', 'int8', 'float4', 'float8', 'numeric', 'text', 'varchar', 'bpchar', 'bool', 'date')) AS builtin
       FROM pg_catalog.pg_type t WHERE t.oid = ANY($1::oid[])`,
    [types],
  );
  const builtin = new Map(rows.map((r) => [r.oid, r.builtin]));
  names.forEach((n, i) => {
    if (!builtin.get(types[i]!)) {
      throw new UserError(`column "${n}" has a type "training_mode": "in_database" does not read (it takes PostgreSQL's numbers, text, boolean and date): cast it in the query (e.g. "${n}"::float8 or ::text)`);
    }
  });
}

/**
 * Moves the model's centroids by full Lloyd steps over every row, in the database, until no
 * centroid moves, the loss improves by less than min_rel_progress (early_stop), or
 * max_iterations; then measures them on every row. The centroids are updated in place.
 */
export async function refineInDatabase(
  ctx: JobContext,
  o: { spec: FeatureSpec; model: KmeansModel; statementTimeoutMs: number; maxIterations: number; earlyStop: boolean; minRelProgress: number },
): Promise<InDatabaseResult> {
  const started = performance.now();
  const { model, spec } = o;
  const { k } = model;
  const d = spec.dims;
  if (d > MAX_DIMS) throw new UserError(`"training_mode": "in_database" takes at most ${MAX_DIMS} model-space dimensions (numeric columns plus kept categories); this model has ${d}: lower "max_categories" or train in memory`);
  if (k > MAX_CLUSTERS) throw new UserError(`"training_mode": "in_database" takes at most ${MAX_CLUSTERS} clusters (got ${k})`);
  await assertBuiltinTypes(ctx, o.statementTimeoutMs, spec);
  const dims = modelSpaceSql(spec, 'q');
  const C = model.centroids;
  const initialCentroids = Array.from({ length: k }, (_, c) => Array.from(C.subarray(c * d, c * d + d)));
  const iterations: IterationInfo[] = [];
  let prevLoss = Infinity;
  let converged = false;
  let last: Step | null = null;
  for (let it = 0; it < o.maxIterations; it++) {
    const t0 = performance.now();
    const s = await step(ctx, o.statementTimeoutMs, dims, C, k);
    const n = s.counts.reduce((a, b) => a + b, 0);
    if (n === 0) throw new UserError('the training query returned no rows');
    const loss = s.within.reduce((a, b) => a + b, 0) / n;
    const info: IterationInfo = {
      iteration: it,
      loss,
      durationMs: performance.now() - t0,
      clusterInfo: Array.from({ length: k }, (_, c) => ({ centroid_id: c + 1, cluster_radius: s.counts[c]! > 0 ? Math.sqrt(s.within[c]! / s.counts[c]!) : 0, cluster_size: s.counts[c]! })),
    };
    iterations.push(info);
    last = s;
    await ctx.checkpoint({ phase: 'train in database', iteration: it, loss });
    if (o.earlyStop && it > 0 && prevLoss > 0 && (prevLoss - loss) / prevLoss < o.minRelProgress) break;
    if (it === o.maxIterations - 1) break;
    prevLoss = loss;
    // the members' means; an empty cluster keeps its centroid
    let moved = false;
    for (let c = 0; c < k; c++) {
      if (s.counts[c] === 0) continue;
      for (let j = 0; j < d; j++) {
        const v = s.sums[c * d + j]! / s.counts[c]!;
        if (v !== C[c * d + j]) moved = true;
        C[c * d + j] = v;
      }
    }
    if (!moved) {
      converged = true;
      break;
    }
  }
  const s = last!;
  const n = s.counts.reduce((a, b) => a + b, 0);
  // Davies-Bouldin from the mean distance of each cluster's rows and the centroid distances;
  // Calinski-Harabasz from the between- and within-cluster sums of squares
  const avg = Array.from({ length: k }, (_, c) => (s.counts[c]! > 0 ? s.spread[c]! / s.counts[c]! : 0));
  const live = Array.from({ length: k }, (_, c) => c).filter((c) => s.counts[c]! > 0);
  const dist = (a: number, b: number) => Math.sqrt(Array.from({ length: d }, (_, j) => (C[a * d + j]! - C[b * d + j]!) ** 2).reduce((x, y) => x + y, 0));
  const db = live.length > 1 ? live.reduce((acc, a) => acc + Math.max(...live.filter((b) => b !== a).map((b) => (avg[a]! + avg[b]!) / Math.max(dist(a, b), 1e-300))), 0) / live.length : null;
  const mean = new Float64Array(d);
  for (const c of live) for (let j = 0; j < d; j++) mean[j] += s.sums[c * d + j]! / n;
  let between = 0;
  for (const c of live) for (let j = 0; j < d; j++) between += s.counts[c]! * (s.sums[c * d + j]! / s.counts[c]! - mean[j]!) ** 2;
  const within = s.within.reduce((a, b) => a + b, 0);
  const ch = live.length > 1 && n > live.length && within > 0 ? (between / (live.length - 1)) / (within / (n - live.length)) : null;
  return {
    rows: n,
    mean_squared_distance: within / n,
    davies_bouldin_index: db,
    calinski_harabasz_score: ch,
    cluster_sizes: Array.from(s.counts),
    seconds: (performance.now() - started) / 1000,
    iterations,
    converged,
    initialCentroids,
    bytesPerIteration: k * (d + 4) * 8,
  };
}
