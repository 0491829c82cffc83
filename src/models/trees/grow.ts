import type { Random } from '../../util/random.ts';
import type { Binned } from './bins.ts';
import { histogram } from './histogram.ts';

// One regression tree on gradients and hessians (XGBoost's second-order formulation):
// a node's weight is -T(G) / (H + l2), where T soft-thresholds by l1, and a split's gain is
// T(G_L)^2/(H_L + l2) + T(G_R)^2/(H_R + l2) - T(G)^2/(H + l2). Grown depth-first to max_depth;
// a histogram is built for the smaller child only, the larger one is parent - smaller (or,
// when the smaller child is small, the parent with its rows taken out), and histogram buffers
// are recycled (a tree of depth 6 needs a handful, not 127). Small nodes have no histogram:
// they sort their rows by bin. The last level's rows are labelled with their leaf, not moved.
//
// Speed: a row's bins are read four at a time as one 32-bit word, the partition moves rows without a branch, and
// the split scan skips empty bins. Carrying the
// gradient pairs through the partitions (scikit-learn's "ordered gradients") was measured too:
// it cost more in the partition than it saved in the histogram.

export interface TreeParams {
  maxDepth: number;
  minChildWeight: number; // minimum hessian sum in a child
  l1: number;
  l2: number;
  minSplitLoss: number; // gamma: minimum gain to split
  colsampleBynode: number; // share of features considered at each node
  learnRate: number; // leaf values are scaled by this (and by 1 / num_parallel_tree)
}

/** Node arrays; a leaf has feature -1. `cover` is the node's hessian sum, `gain` its split's gain. */
export interface Tree {
  feature: number[];
  threshold: number[]; // go left when x <= threshold
  left: number[];
  right: number[];
  value: number[];
  cover: number[];
  gain: number[];
}


// Nodes of at most histogram size / (SMALL_NODE_DIVISOR x features) rows (8 to 256) find their
// split by sorting their rows instead of through a histogram, whose zeroing, subtraction and
// scan cost its whole size however few rows the node has. Thresholds of 16 and 32 rows measured
// best (docs/performance-log.md).
const SMALL_NODE_DIVISOR = 12;

/**
 * Working memory kept from tree to tree: memory is slow to touch the first time on these
 * machines (~3 ms per MB), and a tree on 32,000 rows x 16 features allocated ~1.3 MB of
 * gradient pairs, partition scratch and histograms.
 */
export class TreeWork {
  private pairs = new Float64Array(0);
  private scratch = new Uint32Array(0);
  private leaves = new Int32Array(0);
  private pool: Float64Array[] = [];
  private poolSize = 0;

  /**
   * @param smallNode nodes of at most this many rows are split by sorting their rows rather
   *   than by a histogram (default: by the layout, see smallNodeRows); 0 turns it off.
   */
  constructor(private readonly smallNode?: number) {}

  /** Room for (g, h) pairs of `rows` rows, side by side: gh[2 row], gh[2 row + 1]. */
  gradientPairs(rows: number): Float64Array {
    if (this.pairs.length < 2 * rows) this.pairs = new Float64Array(2 * rows);
    return this.pairs;
  }

  rows(length: number): Uint32Array {
    if (this.scratch.length < length) this.scratch = new Uint32Array(length);
    return this.scratch;
  }

  smallNodeRows(data: Binned): number {
    return this.smallNode ?? Math.max(8, Math.min(256, Math.floor(data.histSize / (SMALL_NODE_DIVISOR * data.nf))));
  }

  /** The leaf of each row (growTree's answer; valid for the rows it was given). */
  leafOf(rows: number): Int32Array {
    if (this.leaves.length < rows) this.leaves = new Int32Array(rows);
    return this.leaves;
  }

  /** The recycled histogram buffers (of `size` doubles); growTree returns them when done. */
  histograms(size: number): Float64Array[] {
    if (size !== this.poolSize) {
      this.pool = [];
      this.poolSize = size;
    }
    return this.pool;
  }
}

/**
 * Grows a tree on `rows` (reordered in place) with gradient pairs gh (g, h side by side per row,
 * TreeWork.gradientPairs). `passengers` are rows that follow the splits without weighing in
 * (evaluation rows, rows outside a subsample). Returns the tree and each row's leaf (for rows
 * and passengers), so the caller updates its predictions without walking the tree.
 */
export function growTree(
  data: Binned,
  rows: Uint32Array,
  gh: Float64Array,
  p: TreeParams,
  rng: Random,
  work: TreeWork = new TreeWork(),
  passengers: Uint32Array = new Uint32Array(0),
): { tree: Tree; leafOf: Int32Array } {
  const tree: Tree = { feature: [], threshold: [], left: [], right: [], value: [], cover: [], gain: [] };
  const { nf } = data;
  const m = rows.length;
  const size = data.histSize;
  const scratch = work.rows(Math.max(m, passengers.length));
  const leafOf = work.leafOf(data.n);
  const features = new Int32Array(nf);
  const pool = work.histograms(size);
  const take = () => pool.pop()?.fill(0) ?? new Float64Array(size);
  const small = work.smallNodeRows(data);
  // A small node's rows sorted by bin, and its bins' ids and (G, H), feature by feature.
  const keys = new Uint32Array(Math.min(m, small));
  const binIds = new Int32Array(Math.min(m, small));
  const binSums = new Float64Array(2 * Math.min(m, small));
  const best = new Float64Array(5); // gain, feature, bin, G_L, H_L
  const l1 = p.l1;
  const l2 = p.l2;
  const soft = (G: number) => (l1 === 0 ? G : G > l1 ? G - l1 : G < -l1 ? G + l1 : 0);

  const rootHist = histogram(data, rows, gh, 0, m, take());
  let G0 = 0;
  let H0 = 0;
  for (let at = data.slots[0]!, end = at + 2 * (data.edges[0]!.length + 1); at < end; at += 2) {
    G0 += rootHist[at]!;
    H0 += rootHist[at + 1]!;
  }
  interface Pending {
    node: number;
    lo: number; // rows[lo, hi)
    hi: number;
    plo: number; // passengers[plo, phi)
    phi: number;
    depth: number;
    hist: Float64Array | null; // null below the last split level and for small nodes
    G: number;
    H: number;
  }
  const stack: Pending[] = [{ node: newNode(tree), lo: 0, hi: m, plo: 0, phi: passengers.length, depth: 0, hist: rootHist, G: G0, H: H0 }];
  const leaf = (node: number, G: number, H: number) => {
    tree.cover[node] = H;
    tree.value[node] = (-soft(G) / (H + l2)) * p.learnRate;
  };
  // The best split of the node bestSplit last looked at.
  let bestF = -1;
  let bestBin = 0;
  let bestGL = 0;
  let bestHL = 0;
  let bestGain = 0;
  while (stack.length) {
    const s = stack.pop()!;
    leaf(s.node, s.G, s.H);
    if (!(s.depth < p.maxDepth && s.hi - s.lo >= 2 && s.H >= 2 * p.minChildWeight && bestSplit(s))) {
      if (s.hist) pool.push(s.hist);
      for (let i = s.lo; i < s.hi; i++) leafOf[rows[i]!] = s.node;
      for (let i = s.plo; i < s.phi; i++) leafOf[passengers[i]!] = s.node;
      continue;
    }
    const f = bestF;
    const bin = bestBin;
    const GL = bestGL;
    const HL = bestHL;
    const col = data.cols.subarray(f * data.n, (f + 1) * data.n);
    const leftNode = newNode(tree);
    const rightNode = newNode(tree); // = leftNode + 1
    tree.feature[s.node] = f;
    tree.threshold[s.node] = data.edges[f]![bin]!;
    tree.left[s.node] = leftNode;
    tree.right[s.node] = rightNode;
    tree.gain[s.node] = bestGain;

    if (s.depth + 1 >= p.maxDepth) {
      // The children are leaves: label the rows rather than partition them.
      if (s.hist) pool.push(s.hist);
      leaf(leftNode, GL, HL);
      leaf(rightNode, s.G - GL, s.H - HL);
      for (let i = s.lo; i < s.hi; i++) {
        const row = rows[i]!;
        leafOf[row] = leftNode + ((bin - col[row]!) >>> 31);
      }
      for (let i = s.plo; i < s.phi; i++) {
        const row = passengers[i]!;
        leafOf[row] = leftNode + ((bin - col[row]!) >>> 31);
      }
      continue;
    }

    const mid = partition(rows, s.lo, s.hi, col, bin, scratch);
    const pmid = partition(passengers, s.plo, s.phi, col, bin, scratch);
    let leftHist: Float64Array | null = null;
    let rightHist: Float64Array | null = null;
    if (s.hist) {
      const leftSmaller = mid - s.lo <= s.hi - mid;
      const [slo, shi] = leftSmaller ? [s.lo, mid] : [mid, s.hi];
      const largeRows = s.hi - s.lo - (shi - slo);
      const large = s.hist; // reused in place
      if (largeRows <= small) pool.push(large); // both children are small
      else if (shi - slo <= small) {
        // Only the larger child needs a histogram: the parent's without the smaller child's rows.
        histogram(data, rows, gh, slo, shi, large, true);
        if (leftSmaller) rightHist = large;
        else leftHist = large;
      } else {
        const part = histogram(data, rows, gh, slo, shi, take());
        for (let j = 0; j < size; j++) large[j] = large[j]! - part[j]!;
        leftHist = leftSmaller ? part : large;
        rightHist = leftSmaller ? large : part;
      }
    }
    stack.push({ node: rightNode, lo: mid, hi: s.hi, plo: pmid, phi: s.phi, depth: s.depth + 1, hist: rightHist, G: s.G - GL, H: s.H - HL });
    stack.push({ node: leftNode, lo: s.lo, hi: mid, plo: s.plo, phi: pmid, depth: s.depth + 1, hist: leftHist, G: GL, H: HL });
  }
  return { tree, leafOf };

  /** The features this node may split on (features[0, count)), a sample when colsample_bynode < 1. */
  function chooseFeatures(): number {
    for (let f = 0; f < nf; f++) features[f] = f;
    if (p.colsampleBynode >= 1) return nf;
    const count = Math.max(1, Math.round(nf * p.colsampleBynode));
    for (let i = 0; i < count; i++) {
      const j = i + rng.int(nf - i);
      const t = features[i]!;
      features[i] = features[j]!;
      features[j] = t;
    }
    return count;
  }

  /**
   * Finds the node's best split (into bestF..bestGain); false when no split gains enough. Per
   * feature, its bins' (G, H) in bin order: the node's histogram, or for a small node without
   * one its rows sorted by bin (key = bin << 20 | position), each bin summed in row order.
   */
  function bestSplit(s: Pending): boolean {
    const count = chooseFeatures();
    const tG = soft(s.G);
    const parentScore = (tG * tG) / (s.H + l2);
    const n = s.hi - s.lo;
    best[0] = p.minSplitLoss;
    best[1] = -1;
    for (let c = 0; c < count; c++) {
      const f = features[c]!;
      const nb = data.edges[f]!.length; // split after bins 0..nb-1
      if (s.hist) {
        scanBins(s.hist, data.slots[f]!, null, nb, f, s.G, s.H, parentScore, p.minChildWeight, l1, l2, best);
        continue;
      }
      // Insertion sort: nodes this small sort faster by hand than by TypedArray.prototype.sort.
      const col = data.cols.subarray(f * data.n, (f + 1) * data.n);
      for (let i = 0; i < n; i++) {
        const key = (col[rows[s.lo + i]!]! << 20) | i;
        let j = i;
        for (; j > 0 && keys[j - 1]! > key; j--) keys[j] = keys[j - 1]!;
        keys[j] = key;
      }
      let bins = 0;
      for (let i = 0; i < n; ) {
        const b = keys[i]! >>> 20;
        if (b >= nb) break;
        let gb = 0;
        let hb = 0;
        for (; i < n && keys[i]! >>> 20 === b; i++) {
          const row = rows[s.lo + (keys[i]! & 0xfffff)]!;
          gb += gh[2 * row]!;
          hb += gh[2 * row + 1]!;
        }
        binIds[bins] = b;
        binSums[2 * bins] = gb;
        binSums[2 * bins + 1] = hb;
        bins++;
      }
      scanBins(binSums, 0, binIds, bins, f, s.G, s.H, parentScore, p.minChildWeight, l1, l2, best);
    }
    bestGain = best[0]!;
    bestF = best[1]!;
    bestBin = best[2]!;
    bestGL = best[3]!;
    bestHL = best[4]!;
    return bestF >= 0;
  }
}

/**
 * Tries the split after each of `count` bins whose (G, H) sit at sums[at + 2k] (bin k, or bin
 * ids[k] when given), left to right; where one beats best[0] (gain), best becomes [gain,
 * feature, bin, G_L, H_L].
 */
function scanBins(sums: Float64Array, at: number, ids: Int32Array | null, count: number, f: number, G: number, H: number, parentScore: number, minChild: number, l1: number, l2: number, best: Float64Array): void {
  let GL = 0;
  let HL = 0;
  for (let k = 0; k < count; k++, at += 2) {
    const hb = sums[at + 1]!;
    if (hb === 0) continue; // an empty bin: the same split as the bin before
    GL += sums[at]!;
    HL += hb;
    if (HL < minChild) continue;
    const HR = H - HL;
    if (HR < minChild) break;
    const gain = splitGain(GL, HL, G - GL, HR, l1, l2, parentScore);
    if (gain > best[0]!) {
      best[0] = gain;
      best[1] = f;
      best[2] = ids ? ids[k]! : k;
      best[3] = GL;
      best[4] = HL;
    }
  }
}

/** A split's gain: T(G_L)^2/(H_L + l2) + T(G_R)^2/(H_R + l2) - the parent's score. */
function splitGain(GL: number, HL: number, GR: number, HR: number, l1: number, l2: number, parentScore: number): number {
  if (l1 === 0) return (GL * GL) / (HL + l2) + (GR * GR) / (HR + l2) - parentScore;
  const a = GL > l1 ? GL - l1 : GL < -l1 ? GL + l1 : 0;
  const c = GR > l1 ? GR - l1 : GR < -l1 ? GR + l1 : 0;
  return (a * a) / (HL + l2) + (c * c) / (HR + l2) - parentScore;
}

/**
 * Stable partition of rows[lo, hi) into bin <= `bin` (left) and the rest; returns where the
 * right side starts. Branch-free: each row is written to both sides and only one cursor moves,
 * by a sign bit rather than a comparison (which compiles to a branch that mispredicts half the
 * time): 1 ns a row instead of 4-8.
 */
function partition(rows: Uint32Array, lo: number, hi: number, col: Uint8Array, bin: number, scratch: Uint32Array): number {
  let l = lo;
  let r = 0;
  for (let i = lo; i < hi; i++) {
    const row = rows[i]!;
    const right = (bin - col[row]!) >>> 31;
    rows[l] = row;
    scratch[r] = row;
    l += 1 - right;
    r += right;
  }
  rows.set(scratch.subarray(0, r), l);
  return l;
}

function newNode(t: Tree): number {
  t.feature.push(-1);
  t.threshold.push(0);
  t.left.push(-1);
  t.right.push(-1);
  t.value.push(0);
  t.cover.push(0);
  t.gain.push(0);
  return t.feature.length - 1;
}
