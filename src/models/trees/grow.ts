import type { Random } from '../../util/random.ts';
import type { Binned } from './bins.ts';

// One regression tree on gradients and hessians (XGBoost's second-order formulation):
// a node's weight is -T(G) / (H + l2), where T soft-thresholds by l1, and a split's gain is
// T(G_L)^2/(H_L + l2) + T(G_R)^2/(H_R + l2) - T(G)^2/(H + l2). Grown depth-first to max_depth;
// each node's histogram is built for the smaller child only, the larger one is parent - smaller.

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
  bin: number[]; // split bin (training-time traversal on bins)
}

const B = 256; // histogram stride per feature

export function growTree(
  data: Binned,
  rows: Uint32Array, // the rows this tree learns from (reordered in place)
  g: Float64Array,
  h: Float64Array,
  p: TreeParams,
  rng: Random,
): Tree {
  const tree: Tree = { feature: [], threshold: [], left: [], right: [], value: [], cover: [], gain: [], bin: [] };
  const { nf } = data;
  const scratch = new Uint32Array(rows.length);
  const features = new Int32Array(nf);
  const score = (G: number, H: number) => {
    const t = thresholdL1(G, p.l1);
    return (t * t) / (H + p.l2);
  };

  const rootHist = histogram(data, rows, 0, rows.length, g, h);
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
    hist: Float64Array;
    G: number;
    H: number;
  }
  const stack: Pending[] = [{ node: newNode(tree), lo: 0, hi: rows.length, depth: 0, hist: rootHist, G: G0, H: H0 }];
  while (stack.length) {
    const s = stack.pop()!;
    tree.cover[s.node] = s.H;
    tree.value[s.node] = (-thresholdL1(s.G, p.l1) / (s.H + p.l2)) * p.learnRate;
    if (s.depth >= p.maxDepth || s.hi - s.lo < 2 || s.H < 2 * p.minChildWeight) continue;

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
    let bestGain = p.minSplitLoss;
    let bestF = -1;
    let bestBin = -1;
    let bestGL = 0;
    let bestHL = 0;
    for (let i = 0; i < count; i++) {
      const f = features[i]!;
      const nb = data.edges[f]!.length; // split after bins 0..nb-1
      let GL = 0;
      let HL = 0;
      const base = f * B * 2;
      for (let b = 0; b < nb; b++) {
        GL += s.hist[base + 2 * b]!;
        HL += s.hist[base + 2 * b + 1]!;
        if (HL < p.minChildWeight) continue;
        const HR = s.H - HL;
        if (HR < p.minChildWeight) break;
        const gain = score(GL, HL) + score(s.G - GL, HR) - parentScore;
        if (gain > bestGain) {
          bestGain = gain;
          bestF = f;
          bestBin = b;
          bestGL = GL;
          bestHL = HL;
        }
      }
    }
    if (bestF < 0) continue;

    // Partition rows[lo, hi) into left (bin <= bestBin) and right, stably.
    const col = bestF * data.n;
    let l = s.lo;
    let r = 0;
    for (let i = s.lo; i < s.hi; i++) {
      const row = rows[i]!;
      if (data.bins[col + row]! <= bestBin) rows[l++] = row;
      else scratch[r++] = row;
    }
    rows.set(scratch.subarray(0, r), l);
    const mid = l;

    const leftNode = newNode(tree);
    const rightNode = newNode(tree);
    tree.feature[s.node] = bestF;
    tree.threshold[s.node] = data.edges[bestF]![bestBin]!;
    tree.bin[s.node] = bestBin;
    tree.left[s.node] = leftNode;
    tree.right[s.node] = rightNode;
    tree.gain[s.node] = bestGain;

    const leftSmaller = mid - s.lo <= s.hi - mid;
    const small = leftSmaller ? histogram(data, rows, s.lo, mid, g, h) : histogram(data, rows, mid, s.hi, g, h);
    const large = s.hist; // reused in place: parent - small
    for (let j = 0; j < large.length; j++) large[j] = large[j]! - small[j]!;
    const leftHist = leftSmaller ? small : large;
    const rightHist = leftSmaller ? large : small;
    stack.push({ node: rightNode, lo: mid, hi: s.hi, depth: s.depth + 1, hist: rightHist, G: s.G - bestGL, H: s.H - bestHL });
    stack.push({ node: leftNode, lo: s.lo, hi: mid, depth: s.depth + 1, hist: leftHist, G: bestGL, H: bestHL });
  }
  return tree;
}

function newNode(t: Tree): number {
  t.feature.push(-1);
  t.threshold.push(0);
  t.left.push(-1);
  t.right.push(-1);
  t.value.push(0);
  t.cover.push(0);
  t.gain.push(0);
  t.bin.push(-1);
  return t.feature.length - 1;
}

function thresholdL1(G: number, l1: number): number {
  if (l1 === 0) return G;
  if (G > l1) return G - l1;
  if (G < -l1) return G + l1;
  return 0;
}

/** (G, H) per (feature, bin) over rows[lo, hi). */
function histogram(data: Binned, rows: Uint32Array, lo: number, hi: number, g: Float64Array, h: Float64Array): Float64Array {
  const hist = new Float64Array(data.nf * B * 2);
  for (let f = 0; f < data.nf; f++) {
    const col = f * data.n;
    const base = f * B * 2;
    for (let i = lo; i < hi; i++) {
      const row = rows[i]!;
      const b = base + 2 * data.bins[col + row]!;
      hist[b] += g[row]!;
      hist[b + 1] += h[row]!;
    }
  }
  return hist;
}

/** The leaf value a row reaches, walking on its bins (training-time). */
export function leafValueBinned(t: Tree, data: Binned, row: number): number {
  let node = 0;
  while (t.feature[node]! >= 0) {
    node = data.bins[t.feature[node]! * data.n + row]! <= t.bin[node]! ? t.left[node]! : t.right[node]!;
  }
  return t.value[node]!;
}

/** The leaf value for a model-space row (scoring, explanation). */
export function leafValue(t: Pick<Tree, 'feature' | 'threshold' | 'left' | 'right' | 'value'>, x: Float64Array, offset: number): number {
  let node = 0;
  while (t.feature[node]! >= 0) node = x[offset + t.feature[node]!]! <= t.threshold[node]! ? t.left[node]! : t.right[node]!;
  return t.value[node]!;
}
