import { UNROLL_MAX, unroll } from '../../util/unroll.ts';

// A k-d tree over the rows of a Euclidean space, for HDBSCAN's exact k-nearest-neighbour core
// distances and its Borůvka spanning tree (boruvka.ts). Rows are copied in tree order so that
// a leaf's rows are contiguous; every node keeps the tight bounding box of its rows.

export interface KdTree {
  n: number;
  d: number;
  /** Row of the input at each tree position. */
  perm: Uint32Array;
  /** The rows in tree order (n x d). */
  P: Float64Array;
  start: Int32Array;
  end: Int32Array;
  left: Int32Array; // -1 for a leaf
  right: Int32Array;
  lo: Float64Array; // node x d: the box's lower corner
  hi: Float64Array;
  nodes: number;
  /** The leaves, in tree order. */
  leaves: Int32Array;
}

/** Typed arrays in shared memory: a helper thread reads the tree and writes results in place. */
export function sharedF64(length: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(Math.max(1, length) * 8), 0, length);
}
export function sharedI32(length: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Math.max(1, length) * 4), 0, length);
}

/**
 * `leafSize`: a leaf's most rows. 32 suits the row-by-row search of a small min_samples and
 * Borůvka; 64 the leaf-at-a-time search of a large one (docs/performance.md, HDBSCAN at scale).
 */
export function buildKdTree(X: Float64Array, n: number, d: number, leafSize = 32): KdTree {
  const perm = new Uint32Array(new SharedArrayBuffer(Math.max(1, n) * 4), 0, n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const cap = 2 * (Math.ceil(n / (leafSize / 2)) + 1); // leaves hold at least leafSize / 2 rows
  const start = sharedI32(cap), end = sharedI32(cap), left = sharedI32(cap).fill(-1), right = sharedI32(cap).fill(-1);
  const lo = sharedF64(cap * d), hi = sharedF64(cap * d);
  let nodes = 0;
  const stack: number[] = [];
  const make = (s: number, e: number) => {
    const id = nodes++;
    start[id] = s;
    end[id] = e;
    for (let j = 0; j < d; j++) {
      let a = Infinity, b = -Infinity;
      for (let p = s; p < e; p++) {
        const v = X[perm[p]! * d + j]!;
        if (v < a) a = v;
        if (v > b) b = v;
      }
      lo[id * d + j] = a;
      hi[id * d + j] = b;
    }
    stack.push(id);
    return id;
  };
  make(0, n);
  while (stack.length) {
    const id = stack.pop()!;
    const s = start[id]!, e = end[id]!;
    if (e - s <= leafSize) continue;
    let dim = 0, spread = -1;
    for (let j = 0; j < d; j++) {
      const w = hi[id * d + j]! - lo[id * d + j]!;
      if (w > spread) {
        spread = w;
        dim = j;
      }
    }
    if (spread <= 0) continue; // identical rows: one leaf
    const mid = (s + e) >> 1;
    select(X, d, perm, s, e - 1, mid, dim);
    left[id] = make(s, mid);
    right[id] = make(mid, e);
  }
  const P = sharedF64(n * d);
  for (let p = 0; p < n; p++) for (let j = 0; j < d; j++) P[p * d + j] = X[perm[p]! * d + j]!;
  const leafIds: number[] = [];
  for (let id = 0; id < nodes; id++) if (left[id]! < 0) leafIds.push(id);
  leafIds.sort((a, b) => start[a]! - start[b]!);
  const leaves = sharedI32(leafIds.length);
  leaves.set(leafIds);
  return { n, d, perm, P, start, end, left, right, lo, hi, nodes, leaves };
}

export interface DistanceKernels {
  /** Squared distances from tree position p to positions rs..re-1 of P (d columns), into out[0..]. */
  toRows(P: Float64Array, p: number, rs: number, re: number, out: Float64Array): void;
  /** Squared distance between tree positions p and q. */
  between(P: Float64Array, p: number, q: number): number;
}

/**
 * The searches' distance loops, compiled once per d as kmeans/kernels.ts does (the row in
 * locals, the terms written out: a loop over the dimensions cost 25 against 17 s at k = 1,000,
 * docs/performance.md). Summed in dimension order, so every value equals the exact passes'.
 * The source is built from the integer d alone: no user text reaches it.
 */
export function distanceKernels(d: number): DistanceKernels {
  let k = compiledDistances.get(d);
  if (!k) compiledDistances.set(d, (k = compileDistances(d)));
  return k;
}

const compiledDistances = new Map<number, DistanceKernels>();

function compileDistances(d: number): DistanceKernels {
  const loop = d > UNROLL_MAX;
  const load = loop ? '' : unroll(d, (j) => `const x${j} = P[a + ${j}];`);
  const toRows = loop
    ? 'for (let j = 0; j < d; j++) { t = P[a + j] - P[b + j]; acc += t * t; }'
    : unroll(d, (j) => `t = x${j} - P[b + ${j}]; acc += t * t;`);
  const between = loop
    ? 'for (let j = 0; j < d; j++) { t = P[a + j] - P[b + j]; acc += t * t; }'
    : unroll(d, (j) => `t = P[a + ${j}] - P[b + ${j}]; acc += t * t;`);
  return {
    toRows: new Function('P', 'p', 'rs', 're', 'out', `
      const d = ${d}, a = p * d;
      ${load}
      for (let r = rs, x = 0, b = rs * d; r < re; r++, x++, b += d) {
        let acc = 0, t = 0;
        ${toRows}
        out[x] = acc;
      }`) as DistanceKernels['toRows'],
    between: new Function('P', 'p', 'q', `
      const d = ${d}, a = p * d, b = q * d;
      let acc = 0, t = 0;
      ${between}
      return acc;`) as DistanceKernels['between'],
  };
}

/** Hoare-style quickselect: positions lo..hi of perm ordered so that position k holds its order statistic on `dim`. */
function select(X: Float64Array, d: number, perm: Uint32Array, lo: number, hi: number, k: number, dim: number): void {
  while (hi > lo) {
    const pivot = X[perm[(lo + hi) >> 1]! * d + dim]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (X[perm[i]! * d + dim]! < pivot) i++;
      while (X[perm[j]! * d + dim]! > pivot) j--;
      if (i <= j) {
        const t = perm[i]!;
        perm[i] = perm[j]!;
        perm[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

/** Squared distance from the row at offset p of P to the box at offset o of lo and hi. */
export function boxToRow(lo: Float64Array, hi: Float64Array, o: number, P: Float64Array, p: number, d: number): number {
  let acc = 0;
  for (let j = 0; j < d; j++) {
    const v = P[p + j]!;
    const a = lo[o + j]! - v;
    if (a > 0) acc += a * a;
    else {
      const b = v - hi[o + j]!;
      if (b > 0) acc += b * b;
    }
  }
  return acc;
}

/**
 * Core distances of the tree positions from..to-1: the distance to the k-th nearest row counting
 * the row itself (so k = 1 gives 0), written to core[position].
 */
export function coreDistancesKd(t: KdTree, k: number, core: Float64Array, from: number, to: number): void {
  const { between } = distanceKernels(t.d);
  const heap = new Float64Array(k); // max-heap of the k smallest squared distances
  const stackNode = new Int32Array(64 + 2 * Math.ceil(Math.log2(t.n + 1)) * 2);
  const stackBound = new Float64Array(stackNode.length);
  for (let p = from; p < to; p++) {
    let size = 0;
    let top = 0;
    stackNode[top] = 0;
    stackBound[top++] = 0;
    while (top > 0) {
      top--;
      const node = stackNode[top]!;
      if (size === k && stackBound[top]! >= heap[0]!) continue;
      const l = t.left[node]!;
      if (l < 0) {
        for (let q = t.start[node]!, e = t.end[node]!; q < e; q++) {
          const v = between(t.P, p, q);
          if (size < k) {
            heap[size] = v;
            siftUp(heap, size++);
          } else if (v < heap[0]!) {
            heap[0] = v;
            siftDown(heap, k);
          }
        }
        continue;
      }
      const r = t.right[node]!;
      const dl = boxToRow(t.lo, t.hi, l * t.d, t.P, p * t.d, t.d), dr = boxToRow(t.lo, t.hi, r * t.d, t.P, p * t.d, t.d);
      // nearer child last: popped first
      if (dl <= dr) {
        stackNode[top] = r;
        stackBound[top++] = dr;
        stackNode[top] = l;
        stackBound[top++] = dl;
      } else {
        stackNode[top] = l;
        stackBound[top++] = dl;
        stackNode[top] = r;
        stackBound[top++] = dr;
      }
    }
    core[p] = Math.sqrt(heap[0]!);
  }
}

function siftUp(h: Float64Array, i: number): void {
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (h[parent]! >= h[i]!) return;
    const t = h[parent]!;
    h[parent] = h[i]!;
    h[i] = t;
    i = parent;
  }
}

function siftDown(h: Float64Array, size: number): void {
  let i = 0;
  for (;;) {
    const a = 2 * i + 1, b = a + 1;
    let m = i;
    if (a < size && h[a]! > h[m]!) m = a;
    if (b < size && h[b]! > h[m]!) m = b;
    if (m === i) return;
    const t = h[m]!;
    h[m] = h[i]!;
    h[i] = t;
    i = m;
  }
}

