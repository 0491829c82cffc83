import { boxToRow, distanceKernels, type KdTree } from './kdtree.ts';

// The minimum spanning tree of the mutual-reachability graph, max(core(a), core(b), d(a, b)),
// by Borůvka on a k-d tree (McInnes & Healy 2017): each round every component finds its
// lightest edge to another component, and at least half of the components merge, so there are
// at most log2(n) rounds. A search skips a node whose rows all belong to the searching row's
// component, or whose lower bound (the row's core distance, the node's smallest core distance,
// the distance to its box) exceeds the component's best edge so far.
//
// Edges are ordered by (weight, smaller row, larger row), rows numbered as in the input: a
// strict total order, so the lightest edge leaving each component is unique and the chosen
// edges never close a cycle, even when many weights tie (mutual reachability makes every edge
// within a core distance weigh that core distance; duplicate rows weigh 0). The tree is the
// unique minimum spanning tree under that order, the one Prim's algorithm (graph.ts) builds
// under the same order: the same hierarchy and the same labels.

export interface SpanningTree {
  a: Int32Array; // input rows, a < b
  b: Int32Array;
  w: Float64Array;
}

/** Smallest core distance in each node (nodes are numbered parents first). */
export function nodeMinCore(t: KdTree, core: Float64Array): Float64Array {
  const m = new Float64Array(t.nodes);
  for (let id = t.nodes - 1; id >= 0; id--) {
    const l = t.left[id]!;
    if (l >= 0) m[id] = Math.min(m[l]!, m[t.right[id]!]!);
    else {
      let v = Infinity;
      for (let p = t.start[id]!; p < t.end[id]!; p++) v = Math.min(v, core[p]!);
      m[id] = v;
    }
  }
  return m;
}

/** Per node: the component of all its rows, or -1 when they span several. */
export function nodeComponents(t: KdTree, comp: Int32Array, out: Int32Array): void {
  for (let id = t.nodes - 1; id >= 0; id--) {
    const l = t.left[id]!;
    if (l >= 0) {
      const a = out[l]!;
      out[id] = a >= 0 && a === out[t.right[id]!]! ? a : -1;
    } else {
      const s = t.start[id]!;
      let c = comp[s]!;
      for (let p = s + 1; p < t.end[id]! && c >= 0; p++) if (comp[p] !== c) c = -1;
      out[id] = c;
    }
  }
}

/** Best outgoing edge per component: weight, and its rows a < b (input numbering); weight Infinity when none yet. */
export interface RoundBest {
  w: Float64Array;
  a: Int32Array;
  b: Int32Array;
}

/** Smallest input row number in each node. */
export function nodeMinRow(t: KdTree): Int32Array {
  const m = new Int32Array(t.nodes);
  for (let id = t.nodes - 1; id >= 0; id--) {
    const l = t.left[id]!;
    if (l >= 0) m[id] = Math.min(m[l]!, m[t.right[id]!]!);
    else {
      let v = t.n;
      for (let p = t.start[id]!; p < t.end[id]!; p++) v = Math.min(v, t.perm[p]!);
      m[id] = v;
    }
  }
  return m;
}

export function newRoundBest(n: number): RoundBest {
  return { w: new Float64Array(n).fill(Infinity), a: new Int32Array(n).fill(-1), b: new Int32Array(n).fill(-1) };
}

const less = (w1: number, a1: number, b1: number, w2: number, a2: number, b2: number) =>
  w1 < w2 || (w1 === w2 && (a1 < a2 || (a1 === a2 && b1 < b2)));

/** One round's searches for the rows at tree positions from..to-1, into `best` (indexed by component). */
export function searchRound(t: KdTree, core: Float64Array, minCore: Float64Array, minRow: Int32Array, comp: Int32Array, nodeComp: Int32Array, best: RoundBest, from: number, to: number): void {
  const stackNode = new Int32Array(64 + 4 * Math.ceil(Math.log2(t.n + 1)));
  const stackBox = new Float64Array(stackNode.length); // the node's squared distance to the row's point
  const { w: bw, a: ba, b: bb } = best;
  const { left, right, start, end, perm, lo, hi, P, d } = t;
  const { between } = distanceKernels(d);
  for (let p = from; p < to; p++) {
    const c = comp[p]!;
    const cp = core[p]!;
    const rp = perm[p]!;
    if (cp > bw[c]!) continue;
    let top = 0;
    stackNode[top] = 0;
    stackBox[top++] = 0;
    while (top > 0) {
      const node = stackNode[--top]!;
      if (nodeComp[node] === c) continue;
      let lb = Math.sqrt(stackBox[top]!);
      if (cp > lb) lb = cp;
      if (minCore[node]! > lb) lb = minCore[node]!;
      if (lb > bw[c]!) continue;
      if (lb === bw[c]!) {
        // a tie on weight: the node's rows can only win on row numbers (a >= the smaller of
        // this row and the node's smallest)
        const a = rp < minRow[node]! ? rp : minRow[node]!;
        if (less(bw[c]!, ba[c]!, bb[c]!, lb, a, a)) continue;
      }
      const l = left[node]!;
      if (l >= 0) {
        const r = right[node]!;
        const dl = boxToRow(lo, hi, l * d, P, p * d, d), dr = boxToRow(lo, hi, r * d, P, p * d, d);
        // the nearer child last: searched first
        if (dl <= dr) {
          stackNode[top] = r;
          stackBox[top++] = dr;
          stackNode[top] = l;
          stackBox[top++] = dl;
        } else {
          stackNode[top] = l;
          stackBox[top++] = dl;
          stackNode[top] = r;
          stackBox[top++] = dr;
        }
        continue;
      }
      for (let q = start[node]!, e = end[node]!; q < e; q++) {
        if (comp[q] === c) continue;
        let w = core[q]!;
        if (cp > w) w = cp;
        if (w > bw[c]!) continue;
        const dist = Math.sqrt(between(P, p, q));
        if (dist > w) w = dist;
        const rq = perm[q]!;
        const a = rp < rq ? rp : rq, b = rp < rq ? rq : rp;
        if (less(w, a, b, bw[c]!, ba[c]!, bb[c]!)) {
          bw[c] = w;
          ba[c] = a;
          bb[c] = b;
        }
      }
    }
  }
}

/** Merges another searcher's per-component bests into `into`. */
export function mergeBest(into: RoundBest, other: RoundBest): void {
  for (let c = 0; c < into.w.length; c++) {
    if (less(other.w[c]!, other.a[c]!, other.b[c]!, into.w[c]!, into.a[c]!, into.b[c]!)) {
      into.w[c] = other.w[c]!;
      into.a[c] = other.a[c]!;
      into.b[c] = other.b[c]!;
    }
  }
}

/**
 * The whole spanning tree on one thread; `round` runs each round's searches (on this thread, or
 * split across threads) and fills `best`.
 */
export async function boruvka(
  t: KdTree,
  round: (comp: Int32Array, nodeComp: Int32Array, best: RoundBest, components: number) => Promise<void> | void,
): Promise<SpanningTree> {
  const n = t.n;
  const position = new Int32Array(n);
  for (let p = 0; p < n; p++) position[t.perm[p]!] = p;
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  const comp = new Int32Array(n);
  const nodeComp = new Int32Array(t.nodes);
  const out: SpanningTree = { a: new Int32Array(Math.max(0, n - 1)), b: new Int32Array(Math.max(0, n - 1)), w: new Float64Array(Math.max(0, n - 1)) };
  let edges = 0;
  while (edges < n - 1) {
    for (let p = 0; p < n; p++) comp[p] = find(p);
    nodeComponents(t, comp, nodeComp);
    const best = newRoundBest(n);
    await round(comp, nodeComp, best, n - edges);
    const before = edges;
    for (let c = 0; c < n; c++) {
      if (comp[c] !== c || best.w[c] === Infinity) continue;
      const x = find(position[best.a[c]!]!), y = find(position[best.b[c]!]!);
      if (x === y) continue; // the other component chose the same edge
      parent[x] = y;
      out.a[edges] = best.a[c]!;
      out.b[edges] = best.b[c]!;
      out.w[edges++] = best.w[c]!;
    }
    if (edges === before) throw new Error('Borůvka round added no edge');
  }
  return out;
}
