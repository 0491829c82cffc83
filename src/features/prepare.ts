import type { CategoryType, Column, Table } from '../data/columns.ts';
import { featureKernels } from './kernels.ts';
import { UserError } from '../util/errors.ts';
import { select } from '../util/select.ts';

// Feature preparation fitted at training time and replayed at scoring time (the generated SQL
// reads the same FeatureSpec from the model artifact). BigQuery ML's rules: numeric NULL ->
// training mean; numeric features z-scored when standardize; categorical one-hot with NULL as
// its own category; a category unseen in training -> an all-zero block.

export interface NumericFeature {
  name: string;
  kind: 'numeric';
  mean: number;
  scale: number; // population standard deviation; 1 when constant or not standardizing
  offset: number; // position in the model-space vector
}

export interface CategoricalFeature {
  name: string;
  kind: 'categorical';
  categories: (string | null)[]; // sorted, NULL last
  offset: number;
  /**
   * The last entry of categories is the overflow bucket, labelled OTHER_CATEGORY: every value
   * not among the others (rare in training, or unseen) falls into it. Absent: unseen values get
   * an all-zero block (one_hot) or -1 (label).
   */
  other?: true;
  /** The argument type of generated functions for boolean and date columns (absent: text). */
  type?: CategoryType;
  /**
   * one_hot (default): one model-space dimension per category, 1 for the row's category.
   * label: one dimension holding the category's position (-1 = unseen), as tree models use it.
   */
  encoding?: 'label';
}

export type Feature = NumericFeature | CategoricalFeature;

export interface FeatureSpec {
  features: Feature[];
  dims: number;
  standardize: boolean;
}

export interface FeatureStats {
  input: string;
  type: 'numeric' | 'categorical' | 'dropped';
  min: number | null;
  max: number | null;
  mean: number | null;
  median: number | null;
  stddev: number | null;
  null_count: number;
  category_count: number | null;
  /** Categories with their own column when the column overflowed into (other); else null. */
  kept_categories: number | null;
  /** Share of the training rows whose category fell into (other); null when none could. */
  other_share: number | null;
  warning: string | null;
}

/** The label of the overflow bucket in centroids, profiles and feature info. */
export const OTHER_CATEGORY = '(other)';

/**
 * What to do with a categorical column of more than maxCategories distinct values (NULL counts
 * as one): 'fail', or 'other' — keep the most frequent categories holding at least
 * minCategoryShare of the rows (at most maxCategories - 1 of them, as scikit-learn's
 * OneHotEncoder(max_categories, min_frequency)) and pool the rest into one (other) column.
 */
export interface CategoryOptions {
  maxCategories: number;
  categoryOverflow: 'other' | 'fail';
  minCategoryShare: number;
}

export function categoryOptions(o: Record<string, unknown>): CategoryOptions {
  return {
    maxCategories: typeof o.max_categories === 'number' ? o.max_categories : 100,
    categoryOverflow: String(o.category_overflow).toLowerCase() === 'fail' ? 'fail' : 'other',
    minCategoryShare: typeof o.min_category_share === 'number' ? o.min_category_share : 0.01,
  };
}

export interface FitOptions extends Partial<CategoryOptions> {
  standardize: boolean;
  categoryEncoding?: 'one_hot' | 'label';
}

export function fitFeatures(table: Table, opts: FitOptions): { spec: FeatureSpec; stats: FeatureStats[] } {
  const features: Feature[] = [];
  const stats: FeatureStats[] = [];
  let offset = 0;
  // One scratch array for every column's median (memory is slow to touch the first time).
  const scratch = new Float64Array(table.columns.some((c) => c.kind === 'numeric') ? Math.min(table.rows, 2 * MEDIAN_SAMPLE) : 0);
  const fast = matrixMoments(table);
  const maxCategories = opts.maxCategories ?? 100;
  for (const [index, col] of table.columns.entries()) {
    if (col.kind === 'numeric') {
      const s = numericStats(col, table.rows, scratch, fast?.[index]);
      if (s.count === 0) {
        stats.push({ ...s.stats, type: 'dropped', warning: 'every value is NULL: the column was dropped from the features' });
        continue;
      }
      const scale = opts.standardize && s.std > 0 ? s.std : 1;
      if (!Number.isFinite(s.mean) || !Number.isFinite(scale)) {
        // finite values near 1e308 overflow the mean or the spread, and the model could not be written as SQL
        throw new UserError(
          `column "${col.name}" has values too large to standardize (its mean or spread overflows a double); divide it in the query, e.g. "${col.name}" / 1e300`,
        );
      }
      features.push({ name: col.name, kind: 'numeric', mean: s.mean, scale, offset });
      stats.push({
        ...s.stats,
        warning: s.std === 0 ? 'constant column: it does not separate clusters' : null,
      });
      offset += 1;
    } else {
      const counts = new Float64Array(col.categories.length);
      for (let i = 0; i < col.codes.length; i++) counts[col.codes[i]!]++;
      const used = col.categories.filter((_, c) => counts[c]! > 0);
      const nullCode = col.categories.indexOf(null);
      const nulls = nullCode >= 0 ? counts[nullCode]! : 0;
      const distinct = used.filter((c) => c !== null).length;
      if (nulls === table.rows) {
        stats.push(emptyStats(col.name, 'dropped', nulls, 'every value is NULL: the column was dropped from the features'));
        continue;
      }
      const label = opts.categoryEncoding === 'label';
      const base = { ...emptyStats(col.name, 'categorical', nulls, null), category_count: distinct };
      let categories: (string | null)[];
      let warning = distinct === 1 ? 'a single category: it does not separate clusters' : null;
      if (used.length <= maxCategories) {
        categories = sortCategories(used);
        features.push({ name: col.name, kind: 'categorical', categories, offset, ...(col.sqlType ? { type: col.sqlType } : {}), ...(label ? { encoding: 'label' as const } : {}) });
      } else {
        if (opts.categoryOverflow === 'fail') {
          throw new UserError(
            `column "${col.name}" has ${distinct} distinct values (max_categories is ${maxCategories}); list it in "exclude", raise "max_categories", or drop "category_overflow": "fail" to pool the rare values into one (other) column`,
          );
        }
        const kept = frequentCategories(col.categories, counts, table.rows, maxCategories - 1, opts.minCategoryShare ?? 0.01);
        const keptRows = kept.reduce((sum, c) => sum + counts[col.categories.indexOf(c)]!, 0);
        categories = [...sortCategories(kept), OTHER_CATEGORY];
        features.push({ name: col.name, kind: 'categorical', categories, offset, ...(col.sqlType ? { type: col.sqlType } : {}), other: true, ...(label ? { encoding: 'label' as const } : {}) });
        base.kept_categories = kept.length;
        base.other_share = (table.rows - keptRows) / table.rows;
        if (kept.length === 0) warning = `no value holds ${pct(opts.minCategoryShare ?? 0.01)} of the rows: every row is in (other), so the column does not separate anything`;
      }
      stats.push({ ...base, warning });
      offset += label ? 1 : categories.length;
    }
  }
  if (features.length === 0) {
    throw new UserError('no usable feature columns: every feature column is entirely NULL');
  }
  return { spec: { features, dims: offset, standardize: opts.standardize }, stats };
}

/** Builds the n x dims model-space matrix (row-major) that the model families train on. */
export function transform(table: Table, spec: FeatureSpec): Float64Array {
  const n = table.rows;
  const d = spec.dims;
  const byName = new Map<string, Column>(table.columns.map((c) => [c.name, c]));
  const inPlace = inPlaceMatrix(table, spec, byName);
  if (inPlace) return inPlace;
  // Shared memory, so that worker threads read the matrix without a copy.
  const X = new Float64Array(new SharedArrayBuffer(n * d * 8));
  const numeric: { values: Float64Array; nulls: Uint8Array; mean: number; inv: number; offset: number; stride: number; at: number }[] = [];
  const categorical: { f: CategoricalFeature; codes: Int32Array; categories: (string | null)[] }[] = [];
  for (const f of spec.features) {
    const col = byName.get(f.name);
    if (!col) throw new UserError(`the training query has no column "${f.name}", which the model's features need`);
    if (f.kind === 'numeric') {
      if (col.kind !== 'numeric') throw new UserError(`column "${f.name}" must be numeric, as when the model was first trained`);
      numeric.push({ values: col.values, nulls: col.nulls, mean: f.mean, inv: 1 / f.scale, offset: f.offset, stride: col.stride ?? 1, at: col.offset ?? 0 });
    } else {
      if (col.kind !== 'categorical') throw new UserError(`column "${f.name}" must be categorical, as when the model was first trained`);
      categorical.push({ f, codes: col.codes, categories: col.categories });
    }
  }
  // Rows in blocks, every column per block: the block of X stays in cache while each column
  // writes its stride (column by column over all of X: 4x slower on 1M x 8).
  const BLOCK = 4096;
  for (let lo = 0; lo < n; lo += BLOCK) {
    const hi = Math.min(n, lo + BLOCK);
    for (const { values, nulls, mean, inv, offset, stride, at } of numeric) {
      for (let i = lo, p = lo * d + offset, q = at + lo * stride; i < hi; i++, p += d, q += stride) X[p] = nulls[i] ? 0 : (values[q]! - mean) * inv;
    }
  }
  for (const { f, codes, categories } of categorical) {
    // Map this table's dictionary codes to the spec's category positions (-1 = unseen).
    const kept = f.other ? f.categories.slice(0, -1) : f.categories;
    const index = new Map<string | null, number>(kept.map((c, i) => [c, i]));
    const unseen = f.other ? kept.length : -1;
    const position = Int32Array.from(categories, (c) => index.get(c) ?? unseen);
    if (f.encoding === 'label') {
      for (let i = 0, p = f.offset; i < n; i++, p += d) X[p] = position[codes[i]!]!;
    } else {
      for (let i = 0, p = f.offset; i < n; i++, p += d) {
        const pos = position[codes[i]!]!;
        if (pos >= 0) X[p + pos] = 1;
      }
    }
  }
  return X;
}

/**
 * Row-major loading of numeric columns in model-space order: the loaded matrix is standardized
 * where it is and becomes the model-space matrix (no second n x d matrix to allocate and touch).
 * The table's columns must not be read afterwards.
 */
function inPlaceMatrix(table: Table, spec: FeatureSpec, byName: Map<string, Column>): Float64Array | null {
  const d = spec.dims;
  let matrix: Float64Array | null = null;
  for (const f of spec.features) {
    const col = byName.get(f.name);
    if (f.kind !== 'numeric' || !col || col.kind !== 'numeric' || col.stride !== d || col.offset !== f.offset) return null;
    if (matrix && col.values.buffer !== matrix.buffer) return null;
    matrix = col.values;
  }
  if (!matrix || !(matrix.buffer instanceof SharedArrayBuffer) || table.columns.length !== spec.features.length) return null;
  const n = table.rows;
  const kernels = featureKernels(d);
  const nulls = spec.features.map((f) => (byName.get(f.name) as NumericColumn).nulls);
  if (kernels && nulls.every((z) => z.indexOf(1) < 0)) {
    const features = spec.features as NumericFeature[];
    kernels.standardize(matrix, n, Float64Array.from(features, (f) => f.mean), Float64Array.from(features, (f) => 1 / f.scale));
    return matrix.subarray(0, n * d);
  }
  for (const f of spec.features as NumericFeature[]) {
    const { nulls } = byName.get(f.name) as NumericColumn;
    const inv = 1 / f.scale;
    for (let i = 0, p = f.offset; i < n; i++, p += d) matrix[p] = nulls[i] ? 0 : (matrix[p]! - f.mean) * inv;
  }
  return matrix.subarray(0, n * d);
}

const MEDIAN_SAMPLE = 100_000;

interface Moments {
  count: number;
  sum: number;
  min: number;
  max: number;
  ss: number; // sum of squared deviations from the mean
}

type NumericColumn = Extract<Column, { kind: 'numeric' }>;

/**
 * Every column's moments in one sweep, when the table is one row-major matrix of numeric
 * columns without NULLs (else null: columnMoments per column, which also names a NaN's row).
 */
function matrixMoments(table: Table): Moments[] | null {
  const d = table.columns.length;
  const cols = table.columns.filter((c): c is NumericColumn => c.kind === 'numeric' && c.stride === d);
  const kernels = featureKernels(d);
  const one = (c: NumericColumn, j: number) => c.offset === j && c.values.buffer === cols[0]!.values.buffer && c.nulls.indexOf(1) < 0;
  if (!kernels || cols.length !== d || !cols.every(one)) return null;
  const n = table.rows;
  const M = cols[0]!.values;
  const shift = Float64Array.from(cols, (_, j) => (n > 0 ? M[j]! : 0));
  const out = new Float64Array(5 * d);
  if (Number.isNaN(kernels.moments(M, n, shift, out))) return null;
  return cols.map((_, j) => {
    const [sum, min, max, s1, s2] = out.subarray(5 * j, 5 * j + 5) as unknown as number[];
    return { count: n, sum: sum!, min: min!, max: max!, ss: n ? Math.max(0, s2! - (s1! * s1!) / n) : 0 };
  });
}

/**
 * Count, sum, min, max and squared deviations of a numeric column, in one pass: the squares
 * are summed around the first value (shifted data keep the one-pass variance exact enough
 * unless the spread is ~1e-8 of the values' size) and corrected by the shifted mean.
 */
function columnMoments(col: Extract<Column, { kind: 'numeric' }>, n: number): Moments {
  const { values, nulls } = col;
  const stride = col.stride ?? 1; // row-major loading: value i is values[offset + i * stride]
  const offset = col.offset ?? 0;
  let count = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  let shift = NaN;
  let s1 = 0;
  let s2 = 0;
  for (let i = 0, p = offset; i < n; i++, p += stride) {
    if (nulls[i]) continue;
    const v = values[p]!;
    if (v - v !== 0) {
      // NaN or +-Infinity
      throw new UserError(
        `column "${col.name}" has the value ${v} (row ${i + 1}); replace NaN/Infinity in the query, e.g. NULLIF(${col.name}, 'NaN')`,
      );
    }
    if (count === 0) shift = v;
    count++;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
    const t = v - shift;
    s1 += t;
    s2 += t * t;
  }
  const ss = count ? Math.max(0, s2 - (s1 * s1) / count) : 0;
  return { count, sum, min, max, ss };
}

function numericStats(col: NumericColumn, n: number, scratch: Float64Array, moments = columnMoments(col, n)) {
  const { values, nulls } = col;
  const stride = col.stride ?? 1; // row-major loading: value i is values[offset + i * stride]
  const offset = col.offset ?? 0;
  const { count, sum, min, max, ss } = moments;
  const mean = count ? sum / count : 0;
  const std = count ? Math.sqrt(ss / count) : 0;
  // The median by quickselect (it reorders: on a copy in the scratch array); above
  // MEDIAN_SAMPLE rows on every step-th row, as BigQuery ML's FEATURE_INFO approximates it.
  const step = Math.max(1, Math.floor(n / MEDIAN_SAMPLE));
  let m = 0;
  for (let i = 0, p = offset; i < n; i += step, p += step * stride) if (!nulls[i]) scratch[m++] = values[p]!;
  const present = scratch.subarray(0, m);
  const median = m === 0 ? null : m % 2 ? select(present, (m - 1) / 2) : (select(present, m / 2 - 1) + select(present, m / 2)) / 2;
  const stats: FeatureStats = {
    input: col.name,
    type: 'numeric',
    min: count ? min : null,
    max: count ? max : null,
    mean: count ? mean : null,
    median,
    stddev: count ? std : null,
    null_count: n - count,
    category_count: null,
    kept_categories: null,
    other_share: null,
    warning: null,
  };
  return { count, mean, std, stats };
}

function emptyStats(input: string, type: FeatureStats['type'], nulls: number, warning: string | null): FeatureStats {
  return { input, type, min: null, max: null, mean: null, median: null, stddev: null, null_count: nulls, category_count: null, kept_categories: null, other_share: null, warning };
}

/** The most frequent categories (ties by value) holding at least minShare of the rows, at most `limit`. */
function frequentCategories(categories: (string | null)[], counts: Float64Array, rows: number, limit: number, minShare: number): (string | null)[] {
  const order = categories.map((_, c) => c).filter((c) => counts[c]! > 0 && counts[c]! >= minShare * rows);
  order.sort((a, b) => counts[b]! - counts[a]! || compareCategories(categories[a]!, categories[b]!));
  return order.slice(0, Math.max(0, limit)).map((c) => categories[c]!);
}

function compareCategories(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

const pct = (share: number) => `${+(share * 100).toFixed(2)}%`;

function sortCategories(cats: (string | null)[]): (string | null)[] {
  const named = cats.filter((c): c is string => c !== null).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return cats.includes(null) ? [...named, null] : named;
}
