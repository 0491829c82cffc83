import { rowDist2, type Space } from '../kmeans/geometry.ts';

// The two O(n^2) passes of HDBSCAN on a dense matrix: core distances (k-th nearest neighbour)
// and the minimum spanning tree of the mutual-reachability graph (Prim). Memory stays O(n).

const dist = (s: Space, i: number, j: number) => Math.sqrt(rowDist2(s, i, s.X, j * s.d, 1));

/**
 * Core distance of each row: the distance to its minSamples-th nearest neighbour counting the
 * row itself (the convention of the hdbscan library and R's dbscan::hdbscan), so minSamples = 1
 * gives 0.
 */
export function coreDistances(s: Space, minSamples: number): Float64Array {
  const { n } = s;
  const m = Math.min(minSamples - 1, n - 1); // neighbours other than the row itself
  const core = new Float64Array(n);
  if (m <= 0) return core;
  // Per row, the m smallest distances so far, kept sorted ascending.
  const best = new Float64Array(n * m).fill(Infinity);
  const insert = (i: number, v: number) => {
    const o = i * m;
    if (v >= best[o + m - 1]!) return;
    let p = m - 1;
    while (p > 0 && best[o + p - 1]! > v) {
      best[o + p] = best[o + p - 1]!;
      p--;
    }
    best[o + p] = v;
  };
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = dist(s, i, j);
      insert(i, v);
      insert(j, v);
    }
  }
  for (let i = 0; i < n; i++) core[i] = best[i * m + m - 1]!;
  return core;
}

export interface Edge {
  a: number;
  b: number;
  weight: number;
}

/**
 * Prim's algorithm on the complete mutual-reachability graph: max(core(a), core(b), d(a, b)).
 * Edges compare by (weight, smaller row, larger row), a strict order: the tree is the unique
 * minimum spanning tree under it, whatever the ties (boruvka.ts builds the same one).
 */
export function mutualReachabilityMst(s: Space, core: Float64Array): Edge[] {
  const { n } = s;
  const inTree = new Uint8Array(n);
  const minDist = new Float64Array(n).fill(Infinity);
  const from = new Int32Array(n).fill(-1);
  const edges: Edge[] = [];
  // on equal weights: is edge (f, j) before edge (g, k) by (smaller row, larger row)?
  const before = (f: number, j: number, g: number, k: number) => {
    const a1 = Math.min(f, j), b1 = Math.max(f, j), a2 = Math.min(g, k), b2 = Math.max(g, k);
    return a1 < a2 || (a1 === a2 && b1 < b2);
  };
  let current = 0;
  inTree[0] = 1;
  for (let step = 1; step < n; step++) {
    let next = -1;
    const cc = core[current]!;
    for (let j = 0; j < n; j++) {
      if (inTree[j]) continue;
      let w = dist(s, current, j);
      if (cc > w) w = cc;
      if (core[j]! > w) w = core[j]!;
      const m = minDist[j]!;
      if (w < m || (w === m && before(current, j, from[j]!, j))) {
        minDist[j] = w;
        from[j] = current;
      }
      if (next < 0) next = j;
      else {
        const v = minDist[j]!, best = minDist[next]!;
        if (v < best || (v === best && before(from[j]!, j, from[next]!, next))) next = j;
      }
    }
    inTree[next] = 1;
    const a = from[next]!;
    edges.push({ a: Math.min(a, next), b: Math.max(a, next), weight: minDist[next]! });
    current = next;
  }
  return edges;
}
