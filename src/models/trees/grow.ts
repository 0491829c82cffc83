import type { Random } from '../../util/random.ts';
import type { Binned } from './bins.ts';

// One regression tree on gradients and hessians (XGBoost's second-order formulation):
// a node's weight is -T(G) / (H + l2), where T soft-thresholds by l1, and a split's gain is
// T(G_L)^2/(H_L + l2) + T(G_R)^2/(H_R + l2) - T(G)^2/(H + l2). Grown depth-first to max_depth;
// a histogram is built for the smaller child only, the larger one is parent - smaller, and
// histogram buffers are recycled (a tree of depth 6 needs a handful, not 127).

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

const B = 256; // histogram stride per feature

/**
 * Grows a tree on rows (reordered in place). `onLeaf(value, lo, hi)` is told each leaf's value
 * and its rows' range in `rows`, so the caller updates its predictions without a traversal.
 */
export function growTree(
  data: Binned,
  rows: Uint32Array,
  g: Float64Array,
  h: Float64Array,
  p: TreeParams,
  rng: Random,
  onLeaf?: (value: number, lo: number, hi: number) => void,
): Tree {
  const tree: Tree = { feature: [], threshold: [], left: [], right: [], value: [], cover: [], gain: [] };
  const { nf } = data;
  const scratch = new Uint32Array(rows.length);
  const features = new Int32Array(nf);
  const pool: Float64Array[] = [];
  const take = () => pool.pop()?.fill(0) ?? new Float64Array(nf * B * 2);
  const l1 = p.l1;
  const l2 = p.l2;
  const score = (G: number, H: number) => {
    const t = l1 === 0 ? G : G > l1 ? G - l1 : G < -l1 ? G + l1 : 0;
    return (t * t) / (H + l2);
  };

  const rootHist = histogram(data, rows, 0, rows.length, g, h, take());
  let G0 = 0;
  let H0 = 0;
  for (let b = 0; b < B; b++) {
    G0 += rootHist[2 * b]!;
    H0 += rootHist[2 * b + 1]!;
  }
  interface Pending {
    node: number;
    lo: number;
    hi: number;
    depth: number;
    hist: Float64Array | null; // null below the last split level
    G: number;
    H: number;
  }
  const stack: Pending[] = [{ node: newNode(tree), lo: 0, hi: rows.length, depth: 0, hist: rootHist, G: G0, H: H0 }];
  while (stack.length) {
    const s = stack.pop()!;
    tree.cover[s.node] = s.H;
    const t = l1 === 0 ? s.G : s.G > l1 ? s.G - l1 : s.G < -l1 ? s.G + l1 : 0;
    tree.value[s.node] = (-t / (s.H + l2)) * p.learnRate;
    const split = s.depth < p.maxDepth && s.hi - s.lo >= 2 && s.H >= 2 * p.minChildWeight ? bestSplit(s) : null;
    if (!split) {
      if (s.hist) pool.push(s.hist);
      onLeaf?.(tree.value[s.node]!, s.lo, s.hi);
      continue;
    }
    const { f: bestF, bin: bestBin, GL, HL, gain } = split;

    // Partition rows[lo, hi) into left (bin <= bestBin) and right, stably.
    let l = s.lo;
    let r = 0;
    const col = data.cols.subarray(bestF * data.n, (bestF + 1) * data.n);
    for (let i = s.lo; i < s.hi; i++) {
      const row = rows[i]!;
      if (col[row]! <= bestBin) rows[l++] = row;
      else scratch[r++] = row;
    }
    rows.set(scratch.subarray(0, r), l);
    const mid = l;

    const leftNode = newNode(tree);
    const rightNode = newNode(tree);
    tree.feature[s.node] = bestF;
    tree.threshold[s.node] = data.edges[bestF]![bestBin]!;
    tree.left[s.node] = leftNode;
    tree.right[s.node] = rightNode;
    tree.gain[s.node] = gain;

    // Children at the last level become leaves: they need no histogram.
    let leftHist: Float64Array | null = null;
    let rightHist: Float64Array | null = null;
    if (s.depth + 1 >= p.maxDepth) pool.push(s.hist!);
    else {
      const leftSmaller = mid - s.lo <= s.hi - mid;
      const small = leftSmaller ? histogram(data, rows, s.lo, mid, g, h, take()) : histogram(data, rows, mid, s.hi, g, h, take());
      const large = s.hist!; // reused in place: parent - small
      for (let j = 0; j < large.length; j++) large[j] = large[j]! - small[j]!;
      leftHist = leftSmaller ? small : large;
      rightHist = leftSmaller ? large : small;
    }
    stack.push({ node: rightNode, lo: mid, hi: s.hi, depth: s.depth + 1, hist: rightHist, G: s.G - GL, H: s.H - HL });
    stack.push({ node: leftNode, lo: s.lo, hi: mid, depth: s.depth + 1, hist: leftHist, G: GL, H: HL });
  }
  return tree;

  function bestSplit(s: Pending): { f: number; bin: number; GL: number; HL: number; gain: number } | null {
    // The features this node may split on.
    let count = nf;
    for (let f = 0; f < nf; f++) features[f] = f;
    if (p.colsampleBynode < 1) {
      count = Math.max(1, Math.round(nf * p.colsampleBynode));
      for (let i = 0; i < count; i++) {
        const j = i + rng.int(nf - i);
        const t = features[i]!;
        features[i] = features[j]!;
        features[j] = t;
      }
    }
    const parentScore = score(s.G, s.H);
    const hist = s.hist!;
    const minChild = p.minChildWeight;
    let bestGain = p.minSplitLoss;
    let best: { f: number; bin: number; GL: number; HL: number; gain: number } | null = null;
    for (let i = 0; i < count; i++) {
      const f = features[i]!;
      const nb = data.edges[f]!.length; // split after bins 0..nb-1
      let GL = 0;
      let HL = 0;
      for (let b = 0, at = f * B * 2; b < nb; b++, at += 2) {
        GL += hist[at]!;
        HL += hist[at + 1]!;
        if (HL < minChild) continue;
        const HR = s.H - HL;
        if (HR < minChild) break;
        const gain = score(GL, HL) + score(s.G - GL, HR) - parentScore;
        if (gain > bestGain) {
          bestGain = gain;
          best = { f, bin: b, GL, HL, gain };
        }
      }
    }
    return best;
  }
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

/** (G, H) per (feature, bin) over rows[lo, hi), into `hist` (zeroed). */
function histogram(data: Binned, rows: Uint32Array, lo: number, hi: number, g: Float64Array, h: Float64Array, hist: Float64Array): Float64Array {
  const nf = data.nf;
  const bins = data.bins;
  for (let i = lo; i < hi; i++) {
    const row = rows[i]!;
    const gi = g[row]!;
    const hi_ = h[row]!;
    for (let f = 0, at = row * nf, base = 0; f < nf; f++, at++, base += 2 * B) {
      const b = base + 2 * bins[at]!;
      hist[b] += gi;
      hist[b + 1] += hi_;
    }
  }
  return hist;
}

/** The leaf value for a model-space row: x <= threshold goes left. */
export function leafValue(t: Pick<Tree, 'feature' | 'threshold' | 'left' | 'right' | 'value'>, x: Float64Array, offset: number): number {
  let node = 0;
  while (t.feature[node]! >= 0) node = x[offset + t.feature[node]!]! <= t.threshold[node]! ? t.left[node]! : t.right[node]!;
  return t.value[node]!;
}
