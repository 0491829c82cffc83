// Histogram binning for tree models: each feature's values are cut into at most MAX_BINS bins
// at midpoints between distinct values (quantiles when there are more distinct values), and
// the training matrix becomes one byte per (row, feature), row-major: a node's rows are
// scattered over the matrix once partitioned, so a histogram pass reads each of its rows'
// gradient pair once and that row's bins from one cache line.
//
// A value x falls into bin b when edges[b - 1] < x <= edges[b]; a split "bin <= b" is the same
// test as "x <= edges[b]", which is what the compiled SQL asks of the raw value.

import { SortScratch, sortedCopy } from '../../util/sort.ts';

export const MAX_BINS = 255;
const SAMPLE = 200_000;

export interface Binned {
  n: number;
  nf: number;
  stride: number; // bytes per row in `bins`: nf rounded up to a multiple of 4 (read 4 at a time)
  bins: Uint8Array; // n x stride, row-major (histograms); padding bytes are 0
  cols: Uint8Array; // nf x n, column-major (partitions read one feature of ascending rows)
  edges: Float64Array[]; // per feature, ascending upper edges of bins 0..nb-2 (the last bin is open)
  /**
   * Histogram layout: feature f's (G, H) pairs start at slots[f] (doubles), one pair per bin it
   * has (edges + 1), so that a histogram is no larger than the features' bins (zeroing and
   * subtracting histograms is per node); the padding features of the last word share one pair.
   */
  slots: Int32Array; // per byte of a row (stride)
  histSize: number; // doubles in a histogram
}

/** Bins the row-major n x d matrix X, with edges fitted on the rows in `fitRows`. */
export function binMatrix(X: Float64Array, n: number, d: number, fitRows: Uint32Array, seed = 1): Binned {
  const rowBytes = Math.ceil(d / 4) * 4;
  // Shared memory: a forest's trees grow on worker threads that read the same bytes (forest.ts).
  const bins = new Uint8Array(new SharedArrayBuffer(n * rowBytes));
  const cols = new Uint8Array(new SharedArrayBuffer(n * d));
  const edges: Float64Array[] = [];
  const stride = Math.max(1, Math.floor(fitRows.length / SAMPLE));
  const m = Math.ceil(fitRows.length / stride);
  const sample = new Float64Array(m);
  const scratch = new SortScratch();
  const unique = new Float64Array(m);
  for (let f = 0; f < d; f++) {
    // A regular stride over the fitting rows (offset by the seed) is sample enough for quantiles.
    for (let j = 0, r = seed % stride; j < m; j++, r += stride) sample[j] = X[fitRows[Math.min(r, fitRows.length - 1)]! * d + f]!;
    const e = edgesOf(sample, scratch, unique);
    edges.push(e);
    binColumn(X, n, d, f, e, (i, bin) => {
      bins[i * rowBytes + f] = bin;
      cols[f * n + i] = bin;
    });
  }
  const slots = new Int32Array(rowBytes);
  let histSize = 0;
  for (let f = 0; f < d; f++) {
    slots[f] = histSize;
    histSize += 2 * (edges[f]!.length + 1);
  }
  slots.fill(histSize, d); // padding: always bin 0
  histSize += 2;
  return { n, nf: d, stride: rowBytes, bins, cols, edges, slots, histSize };
}

function edgesOf(sample: Float64Array, scratch: SortScratch, unique: Float64Array): Float64Array {
  const sorted = sortedCopy(sample, scratch);
  let u = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) unique[u++] = sorted[i]!;
  const distinct = unique.subarray(0, u);
  if (distinct.length <= MAX_BINS) {
    const e = new Float64Array(Math.max(0, distinct.length - 1));
    for (let i = 0; i < e.length; i++) e[i] = midpoint(distinct[i]!, distinct[i + 1]!);
    return e;
  }
  // Quantile cut points, each moved to the midpoint between the two distinct values around it.
  const out: number[] = [];
  for (let b = 1; b < MAX_BINS; b++) {
    const q = sorted[Math.floor((b * sorted.length) / MAX_BINS)]!;
    const above = upper(distinct, q);
    if (above === null) break;
    const cut = midpoint(q, above);
    if (out.length === 0 || cut > out[out.length - 1]!) out.push(cut);
  }
  return Float64Array.from(out);
}

function midpoint(a: number, b: number): number {
  const m = a + (b - a) / 2;
  // Guard the degenerate case of adjacent floats: the edge must separate a (left) from b.
  return m < b ? m : a;
}

/** The smallest distinct value greater than q, or null. */
function upper(distinct: Float64Array, q: number): number | null {
  let lo = 0;
  let hi = distinct.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (distinct[mid]! <= q) lo = mid + 1;
    else hi = mid;
  }
  return lo < distinct.length ? distinct[lo]! : null;
}

const CELLS = 1024;

/**
 * binOf(edges, x) of column f of X (row-major n x d), to `put(row, bin)`. A binary search per
 * value costs 8 dependent loads and mispredicted branches (~80 ns); here a grid of CELLS equal
 * cells over the edges' range gives each value the bin of its cell's left end, corrected by a
 * step or two along the edges (40,000 x 16: ~55 -> ~15 ms). Edges crowded into a few cells
 * (over 8 in one) fall back to the search.
 */
function binColumn(X: Float64Array, n: number, d: number, f: number, edges: Float64Array, put: (row: number, bin: number) => void): void {
  const len = edges.length;
  const lo = edges[0] ?? 0;
  const hi = edges[len - 1] ?? 0;
  const scale = hi > lo ? CELLS / (hi - lo) : 0;
  const grid = new Uint8Array(CELLS + 1);
  let crowded = scale === 0 || !Number.isFinite(scale);
  for (let c = 0; c <= CELLS && !crowded; c++) {
    grid[c] = binOf(edges, lo + c / scale);
    if (c > 0 && grid[c]! - grid[c - 1]! > 8) crowded = true;
  }
  for (let i = 0, p = f; i < n; i++, p += d) {
    const x = X[p]!;
    let b: number;
    if (crowded) b = binOf(edges, x);
    else if (x <= lo) b = 0;
    else if (x > hi) b = len;
    else {
      // The cell's bin is exact up to rounding in the cell arithmetic: walk to the first edge >= x.
      b = grid[Math.min(CELLS - 1, Math.floor((x - lo) * scale))]!;
      while (b < len && edges[b]! < x) b++;
      while (b > 0 && edges[b - 1]! >= x) b--;
    }
    put(i, b);
  }
}

/** The bin of value x: the first b with x <= edges[b], or edges.length. */
export function binOf(edges: Float64Array, x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x <= edges[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
