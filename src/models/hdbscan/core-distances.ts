import { selectRange } from '../../util/select.ts';
import { boxToRow, distanceKernels, type DistanceKernels, type KdTree } from './kdtree.ts';

// HDBSCAN's core distances: each row's distance to its k-th nearest row, exactly, on the k-d
// tree. The rows of one leaf are searched together: one walk of the tree serves them all, nodes
// are pruned by their distance to the leaf's box, and each row skips a reached leaf whose box is
// beyond its own k-th distance so far. A row's search reaches the same leaves as a search of its
// own, but the walk's cost (box distances, the stack) is shared by the leaf's rows, which is most
// of a row-by-row search's cost at large k (docs/performance.md, HDBSCAN at scale).

/** From this k on, a leaf's rows searched together beat a search per row (docs/performance.md). */
export const LEAF_BATCH_MIN_K = 100;

/** Rows of a reached leaf taken in before the candidates are cut back to k. */
const SLACK = 64;

/** Leaves with more rows than this (identical rows) are searched row by row. */
const BATCH_MAX = 64;

/** Working memory of one searching thread. */
export class CoreSearch {
  /**
   * Per row of a batch, `stride` places for its candidates (squared distances below its k-th so
   * far, `tops`): once 2k have gathered, the k smallest are kept (quickselect) and the k-th
   * becomes the new bound; SLACK more hold a reached leaf's distances taken in before that check.
   */
  private buf: Float64Array;
  private stride: number;
  private sizes = new Int32Array(BATCH_MAX);
  private tops = new Float64Array(BATCH_MAX);
  private dist: Float64Array; // one reached leaf's distances to one row
  private kernels: DistanceKernels;
  private queue: NodeQueue;

  constructor(private t: KdTree, private k: number) {
    this.stride = 2 * k + SLACK;
    this.buf = new Float64Array(BATCH_MAX * this.stride);
    this.dist = new Float64Array(Math.max(BATCH_MAX, maxLeafRows(t)));
    this.kernels = distanceKernels(t.d);
    this.queue = new NodeQueue(t.nodes);
  }

  /** Core distances of the rows of leaves[from..to) (tree order), written to core[position]. */
  leaves(core: Float64Array, from: number, to: number): void {
    const t = this.t;
    for (let i = from; i < to; i++) {
      const leaf = t.leaves[i]!;
      if (t.end[leaf]! - t.start[leaf]! > BATCH_MAX) for (let p = t.start[leaf]!; p < t.end[leaf]!; p++) this.batch(core, p, p + 1, -1);
      else this.batch(core, t.start[leaf]!, t.end[leaf]!, leaf);
    }
  }

  /** Rows s..e-1 searched together; `box` is the node whose box holds them all (-1: the single row's own point). */
  private batch(core: Float64Array, s: number, e: number, box: number): void {
    const { t, k, buf, sizes, tops, dist } = this;
    const { toRows } = this.kernels;
    const stride = this.stride;
    const { d, P, lo, hi, left, right, start, end } = t;
    const m = e - s;
    sizes.fill(0, 0, m);
    tops.fill(Infinity, 0, m);
    let bound = Infinity; // the largest k-th distance so far of the rows (squared), once all have k
    // best first: nodes in order of their distance to the rows' box, so that each row's first
    // k candidates are near its k nearest and the walk ends at the first node beyond them all
    const queue = this.queue;
    queue.clear();
    queue.push(0, 0);
    while (queue.size > 0) {
      if (queue.minBound() >= bound) break;
      const node = queue.pop();
      const l = left[node]!;
      if (l >= 0) {
        const r = right[node]!;
        queue.push(l, box >= 0 ? boxToBox(lo, hi, l * d, box * d, d) : boxToRow(lo, hi, l * d, P, s * d, d));
        queue.push(r, box >= 0 ? boxToBox(lo, hi, r * d, box * d, d) : boxToRow(lo, hi, r * d, P, s * d, d));
        continue;
      }
      const rs = start[node]!, re = end[node]!;
      let full = 0;
      let largest = 0;
      for (let i = 0; i < m; i++) {
        const p = s + i;
        let top = tops[i]!;
        if (top !== Infinity && m > 1 && boxToRow(lo, hi, node * d, P, p * d, d) >= top) {
          full++;
          if (top > largest) largest = top;
          continue;
        }
        toRows(P, p, rs, re, dist);
        const h = i * stride;
        let size = sizes[i]!;
        for (let c = 0, len = re - rs; c < len; c += SLACK) {
          // branch-free: every distance is written, and kept (size grows) when below the bound
          for (let x = c, stop = Math.min(len, c + SLACK); x < stop; x++) {
            const v = dist[x]!;
            buf[h + size] = v;
            size += +(v < top);
          }
          if (size >= 2 * k || (top === Infinity && size >= k)) {
            top = selectRange(buf, h, h + size - 1, h + k - 1);
            size = k;
          }
        }
        sizes[i] = size;
        tops[i] = top;
        if (top !== Infinity) {
          full++;
          if (top > largest) largest = top;
        }
      }
      if (full === m) bound = largest;
    }
    for (let i = 0; i < m; i++) core[s + i] = Math.sqrt(sizes[i] === k ? tops[i]! : selectRange(buf, i * stride, i * stride + sizes[i]! - 1, i * stride + k - 1));
  }
}

/** A min-heap of tree nodes by a lower bound on their distance. */
class NodeQueue {
  private node: Int32Array;
  private bound: Float64Array;
  size = 0;

  constructor(capacity: number) {
    this.node = new Int32Array(capacity);
    this.bound = new Float64Array(capacity);
  }

  clear(): void {
    this.size = 0;
  }

  minBound(): number {
    return this.bound[0]!;
  }

  push(node: number, bound: number): void {
    const { node: ns, bound: bs } = this;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (bs[parent]! <= bound) break;
      ns[i] = ns[parent]!;
      bs[i] = bs[parent]!;
      i = parent;
    }
    ns[i] = node;
    bs[i] = bound;
  }

  /** Removes and returns the node of the smallest bound. */
  pop(): number {
    const { node: ns, bound: bs } = this;
    const out = ns[0]!;
    const size = --this.size;
    const lastNode = ns[size]!, lastBound = bs[size]!;
    let i = 0;
    for (;;) {
      const a = 2 * i + 1;
      if (a >= size) break;
      const b = a + 1;
      const c = b < size && bs[b]! < bs[a]! ? b : a;
      if (bs[c]! >= lastBound) break;
      ns[i] = ns[c]!;
      bs[i] = bs[c]!;
      i = c;
    }
    ns[i] = lastNode;
    bs[i] = lastBound;
    return out;
  }
}

function maxLeafRows(t: KdTree): number {
  let most = 0;
  for (let i = 0; i < t.leaves.length; i++) most = Math.max(most, t.end[t.leaves[i]!]! - t.start[t.leaves[i]!]!);
  return most;
}

/** Squared distance between the boxes at offsets o and w (no larger than between any two of their rows). */
function boxToBox(lo: Float64Array, hi: Float64Array, o: number, w: number, d: number): number {
  let acc = 0;
  for (let j = 0; j < d; j++) {
    const a = lo[o + j]! - hi[w + j]!;
    if (a > 0) acc += a * a;
    else {
      const b = lo[w + j]! - hi[o + j]!;
      if (b > 0) acc += b * b;
    }
  }
  return acc;
}
