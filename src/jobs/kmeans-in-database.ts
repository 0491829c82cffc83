import { stepRows } from '../data/step.ts';
import type { FeatureSpec } from '../features/prepare.ts';
import type { IterationInfo } from '../models/kmeans/lloyd.ts';
import type { StreamedMetrics } from '../models/kmeans/minibatch.ts';
import type { KmeansModel } from '../models/kmeans/train.ts';
import { UserError } from '../util/errors.ts';
import type { JobContext } from './context.ts';

// k-means where the rows are (option "training_mode": "in_database"): the model fitted on a
// sample in memory (as streaming does) gives the initial centroids, then each Lloyd step over
// every row is one aggregate in the database, in the requester's step function that
// ml_create_model made (sql/api/in_database.sql): nearest centroid, GROUP BY it, count and sums.
// The sidecar sends the centroids and the model's centring as values and gets k x (d + 3)
// numbers back per step (per foreign partition), whatever the rows; it holds the sample only.

export interface InDatabaseResult extends StreamedMetrics {
  seconds: number;
  iterations: IterationInfo[];
  converged: boolean;
  initialCentroids: number[][];
  bytesPerIteration: number;
}

/**
 * The rows the sidecar holds: the initial centroids and the categories come from a sample this
 * size (every row then moves the centroids; the standardization is every row's: columnStatistics).
 */
export const IN_DATABASE_SAMPLE_ROWS = 20_000;

/** Model-space dimensions beyond which a step's query is refused (its text and its sums grow with them). */
const MAX_DIMS = 1000;

/** The step function's columns as it reads them: 'n' numeric, 't' text or boolean, 'd' date. */
interface StepColumn {
  col: string;
  kind: 'n' | 't' | 'd';
}

/**
 * Whether this k-means job trains in the database, and why: asked for, or (training_mode not
 * given, and ml_create_model made it a step function) its rows read foreign tables, or its
 * rows x columns in doubles would exceed the sidecar's memory budget (the planner's estimate).
 */
export async function inDatabaseMode(ctx: JobContext, options: Record<string, unknown>): Promise<'requested' | 'foreign tables' | 'memory budget' | null> {
  if (options.training_mode === 'in_database') return 'requested';
  if (options.training_mode !== undefined) return null;
  const { rows } = await ctx.pool.query<{ fenced: boolean; columns: number }>(
    `SELECT j.step_fenced AS fenced, (SELECT count(*)::int FROM ml.step_columns(j.query_function::regprocedure, m.options -> 'exclude')) AS columns
       FROM ml.jobs j JOIN ml.models m ON m.id = j.model_id WHERE j.id = $1::bigint AND j.step_queries IS NOT NULL`,
    [ctx.job.id],
  );
  const step = rows[0];
  if (!step) return null;
  if (!step.fenced) return 'foreign tables';
  return ctx.source.estimatedRows * step.columns * 8 > ctx.maxBytes ? 'memory budget' : null;
}

/**
 * The step function's columns, whether it is the fenced form (a local table: distances cost
 * little), and how many category counts it returns per categorical column.
 */
async function stepColumns(ctx: JobContext): Promise<{ columns: StepColumn[]; fenced: boolean; maxCategories: number }> {
  const { rows } = await ctx.pool.query<StepColumn & { fenced: boolean; max_categories: number }>(
    `SELECT s.col, s.kind, j.step_fenced AS fenced, coalesce((m.options ->> 'max_categories')::int, 100) AS max_categories
       FROM ml.jobs j JOIN ml.models m ON m.id = j.model_id,
            ml.step_columns(j.query_function::regprocedure, m.options -> 'exclude') s
      WHERE j.query_function = $1::oid AND j.kind = 'train' ORDER BY s.ord`,
    [ctx.source.fn],
  );
  return { columns: rows, fenced: rows[0]?.fenced === true, maxCategories: rows[0]?.max_categories ?? 100 };
}

/**
 * Every numeric column's mean and population standard deviation over every row (its non-NULL
 * values, as the in-memory preparation), by one aggregate: the step function's second query
 * ($12), which returns per query the rows and per column the sum, the non-NULL rows and the sum
 * of squares of its values standardized by the sample's statistics (the sums stay small, the
 * variance exact, and no product overflows where the steps' would not).
 */
export async function columnStatistics(ctx: JobContext, sample: Map<string, { mean: number; scale: number }>, statementTimeoutMs: number): Promise<Map<string, { mean: number; std: number }>> {
  const { columns } = await stepColumns(ctx);
  const numeric = columns.filter((c) => c.kind === 'n');
  const out = new Map<string, { mean: number; std: number }>();
  if (numeric.length === 0) return out;
  const centre = numeric.map((c) => sample.get(c.col)?.mean ?? 0);
  const scale = numeric.map((c) => sample.get(c.col)?.scale ?? 1);
  // a column the model dropped is multiplied by 0, as in the steps (its values are never squared)
  const inverse = numeric.map((c, i) => (sample.has(c.col) && Number.isFinite(1 / scale[i]!) ? 1 / scale[i]! : 0));
  let rows: { filled: number[]; sums: number[]; column_squares: number[] }[];
  try {
    // only the centring ($2, $3) is read; the other parameters are the step's
    rows = await stepRows({ source: ctx.source, statementTimeoutMs }, ['{}', centre, inverse, [], [], [], [], [], [], false, [], true], { jit: numeric.length <= 64 });
  } catch (err) {
    if ((err as { code?: string }).code === '22003') {
      throw new UserError(`one of the numeric columns (${numeric.map((c) => c.col).join(', ')}) holds values so far from those of the 20,000-row sample that their squares overflow a double (value out of range); filter the outliers out or rescale the column in the training query`);
    }
    throw err;
  }
  numeric.forEach((c, i) => {
    let filled = 0, sum = 0, squares = 0;
    for (const row of rows) {
      filled += row.filled[i] ?? 0;
      sum += row.sums[i] ?? 0;
      squares += row.column_squares[i] ?? 0;
    }
    if (filled === 0 || inverse[i] === 0) return;
    const offset = sum / filled;
    const mean = centre[i]! + offset * scale[i]!;
    const std = Math.sqrt(Math.max(0, squares / filled - offset * offset)) * scale[i]!;
    if (!Number.isFinite(mean) || !Number.isFinite(std)) {
      throw new UserError(`column "${c.col}" holds NaN, infinite or overflowing values; filter them out in the training query (e.g. WHERE "${c.col}" <> 'NaN' AND "${c.col}" NOT IN ('Infinity', '-Infinity'))`);
    }
    out.set(c.col, { mean, std });
  });
  return out;
}

/** Where the step's numeric and categorical columns land in model space (0: nowhere, a column the model dropped). */
interface Layout {
  mean: number[];
  inverseScale: number[];
  numericDim: number[];
  categories: string[];
  categoryDim: number[];
  nullDim: number[];
  otherDim: number[];
  /** per categorical column, the dimension before its first category */
  categoryOffset: number[];
  /** category counts per categorical column in the step's rows (max_categories) */
  maxCategories: number;
  /** the model-space dimensions of categories */
  categoryDims: number[];
}

function layout(spec: FeatureSpec, columns: StepColumn[], maxCategories: number): Layout {
  const byName = new Map(spec.features.map((f) => [f.name, f]));
  const out: Layout = { mean: [], inverseScale: [], numericDim: [], categories: [], categoryDim: [], nullDim: [], otherDim: [], categoryOffset: [], maxCategories, categoryDims: [] };
  let r = 0;
  for (const c of columns) {
    const f = byName.get(c.col);
    if (c.kind === 'n') {
      if (f && f.kind !== 'numeric') throw new Error(`column "${c.col}": the step reads a number, the model a category`);
      out.mean.push(f ? f.mean : 0);
      out.inverseScale.push(f ? 1 / f.scale : 0);
      out.numericDim.push(f ? f.offset + 1 : 0);
      continue;
    }
    r++;
    if (f && f.kind !== 'categorical') throw new Error(`column "${c.col}": the step reads a category, the model a number`);
    if (f?.kind === 'categorical' && f.encoding === 'label') throw new UserError(`column "${f.name}" is label-encoded; in_database k-means takes one-hot categories`);
    // as categoryPosition(): a kept category, else (other) when the column has one, else no dimension
    const kept = f?.kind === 'categorical' ? (f.other ? f.categories.slice(0, -1) : f.categories) : [];
    const other = f?.kind === 'categorical' && f.other ? f.offset + kept.length + 1 : 0;
    let nullDim = other;
    kept.forEach((value, j) => {
      if (value === null) nullDim = f!.offset + j + 1;
      else {
        out.categories.push(`${r}:${value}`);
        out.categoryDim.push(f!.offset + j + 1);
      }
    });
    out.nullDim.push(nullDim);
    out.otherDim.push(other);
    out.categoryOffset.push(f?.kind === 'categorical' ? f.offset : 0);
    if (f?.kind === 'categorical' && f.categories.length > maxCategories) throw new Error(`column "${f.name}": ${f.categories.length} categories, the step counts ${maxCategories}`);
    if (f?.kind === 'categorical') for (let j = 0; j < f.categories.length; j++) out.categoryDims.push(f.offset + j + 1);
  }
  return out;
}

interface Step {
  counts: Float64Array;
  sums: Float64Array;
  within: Float64Array;
  spread: Float64Array;
  bytes: number; // what came back
}

/**
 * One Lloyd step over every row: the step function's rows folded into per-centroid counts,
 * sums and squared distances (from the squared norms: |v - c|^2 = |v|^2 - 2 v.c + |c|^2);
 * with `measure`, also the distances (for Davies-Bouldin).
 */
async function step(ctx: JobContext, timeoutMs: number, L: Layout, C: Float64Array, k: number, d: number, measure: boolean): Promise<Step> {
  // centroids as [1:k][0:d], column 0 all zeros (the dimension of nothing)
  const centroids = `[1:${k}][0:${d}]={${Array.from({ length: k }, (_, c) => `{0,${Array.from(C.subarray(c * d, c * d + d)).join(',')}}`).join(',')}}`;
  const squares = Array.from({ length: k }, (_, c) => L.categoryDims.reduce((acc, j) => acc + C[c * d + j - 1]! ** 2, 0));
  const rows = await stepRows<{ c: number; cats: number[]; n: number; sums: number[]; squares: number; spread: number | null }>(
    { source: ctx.source, statementTimeoutMs: timeoutMs },
    [centroids, L.mean, L.inverseScale, L.numericDim, L.categories, L.categoryDim, L.nullDim, L.otherDim, squares, measure, L.categoryOffset, false],
    { jit: k * d <= 256 },
  );
  const out: Step = { counts: new Float64Array(k), sums: new Float64Array(k * d), within: new Float64Array(k), spread: new Float64Array(k), bytes: 0 };
  const norms = new Float64Array(k);
  for (const r of rows) {
    const c = r.c - 1;
    out.counts[c] += r.n;
    norms[c] += r.squares;
    out.spread[c] += r.spread ?? 0;
    r.sums.forEach((v, i) => {
      const dim = L.numericDim[i]!;
      if (dim > 0) out.sums[c * d + dim - 1] += v;
    });
    // per categorical column, the count of its h-th category is the sum of dimension offset + h
    r.cats.forEach((count, i) => {
      if (count > 0) out.sums[c * d + L.categoryOffset[Math.floor(i / L.maxCategories)]! + (i % L.maxCategories)] += count;
    });
    out.bytes += 8 * (r.cats.length + r.sums.length + 4);
  }
  for (let c = 0; c < k; c++) {
    let dot = 0;
    let sq = 0;
    for (let j = 0; j < d; j++) {
      dot += C[c * d + j]! * out.sums[c * d + j]!;
      sq += C[c * d + j]! ** 2;
    }
    out.within[c] = Math.max(0, norms[c]! - 2 * dot + out.counts[c]! * sq);
  }
  if (![...out.sums, ...out.within, ...out.spread].every(Number.isFinite)) {
    throw new UserError('a feature column holds NaN, infinite or overflowing values in rows the sample did not see; filter them out in the training query (e.g. WHERE x <> \'NaN\' AND x NOT IN (\'Infinity\', \'-Infinity\'))');
  }
  return out;
}

/**
 * Moves the model's centroids by full Lloyd steps over every row, in the database, until no
 * centroid moves, the loss improves by less than min_rel_progress (early_stop), or
 * max_iterations; then measures them on every row. The centroids are updated in place.
 */
export async function refineInDatabase(
  ctx: JobContext,
  o: { spec: FeatureSpec; model: KmeansModel; statementTimeoutMs: number; maxIterations: number; earlyStop: boolean; minRelProgress: number; deadline?: number },
): Promise<InDatabaseResult> {
  const started = performance.now();
  const { model, spec } = o;
  const { k } = model;
  const d = spec.dims;
  if (d > MAX_DIMS) throw new UserError(`"training_mode": "in_database" takes at most ${MAX_DIMS} model-space dimensions (numeric columns plus kept categories); this model has ${d}: lower "max_categories" or train in memory`);
  const { columns, fenced, maxCategories } = await stepColumns(ctx);
  const L = layout(spec, columns, maxCategories);
  const C = model.centroids;
  const initialCentroids = Array.from({ length: k }, (_, c) => Array.from(C.subarray(c * d, c * d + d)));
  const iterations: IterationInfo[] = [];
  let prevLoss = Infinity;
  let converged = false;
  let last: Step | null = null;
  let timeUp = false;
  for (let it = 0; it < o.maxIterations; it++) {
    const t0 = performance.now();
    // the fenced form has each row's distance at hand: it sums them in every step
    const s = await step(ctx, o.statementTimeoutMs, L, C, k, d, fenced);
    const n = s.counts.reduce((a, b) => a + b, 0);
    if (n === 0) throw new UserError('the training query returned no rows');
    const loss = s.within.reduce((a, b) => a + b, 0) / n;
    const info: IterationInfo = {
      iteration: it,
      loss,
      durationMs: performance.now() - t0,
      mode: 'in_database',
      bytes: s.bytes,
      clusterInfo: Array.from({ length: k }, (_, c) => ({ centroid_id: c + 1, cluster_radius: s.counts[c]! > 0 ? Math.sqrt(s.within[c]! / s.counts[c]!) : 0, cluster_size: s.counts[c]! })),
    };
    iterations.push(info);
    last = s;
    await ctx.checkpoint({ phase: 'train in database', iteration: it, loss });
    if (o.earlyStop && it > 0 && prevLoss > 0 && (prevLoss - loss) / prevLoss < o.minRelProgress) break;
    if (it === o.maxIterations - 1) break;
    // max_runtime: stop between steps, keeping the centroids this step measured
    if (o.deadline !== undefined && Date.now() > o.deadline) {
      timeUp = true;
      break;
    }
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
  // the shipped form sums the distances once, in a last pass with the final centroids (none
  // once max_runtime has passed: no Davies-Bouldin then)
  const s = fenced || timeUp ? last! : await step(ctx, o.statementTimeoutMs, L, C, k, d, true);
  const measured = fenced || !timeUp;
  const n = s.counts.reduce((a, b) => a + b, 0);
  // Davies-Bouldin from the mean distance of each cluster's rows and the centroid distances;
  // Calinski-Harabasz from the between- and within-cluster sums of squares
  const avg = Array.from({ length: k }, (_, c) => (s.counts[c]! > 0 ? s.spread[c]! / s.counts[c]! : 0));
  const live = Array.from({ length: k }, (_, c) => c).filter((c) => s.counts[c]! > 0);
  const dist = (a: number, b: number) => Math.sqrt(Array.from({ length: d }, (_, j) => (C[a * d + j]! - C[b * d + j]!) ** 2).reduce((x, y) => x + y, 0));
  const db = measured && live.length > 1 ? live.reduce((acc, a) => acc + Math.max(...live.filter((b) => b !== a).map((b) => (avg[a]! + avg[b]!) / Math.max(dist(a, b), 1e-300))), 0) / live.length : null;
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
    bytesPerIteration: s.bytes,
  };
}
