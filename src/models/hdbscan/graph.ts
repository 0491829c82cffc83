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

/** Prim's algorithm on the complete mutual-reachability graph: max(core(a), core(b), d(a, b)). */
export function mutualReachabilityMst(s: Space, core: Float64Array): Edge[] {
  const { n } = s;
  const inTree = new Uint8Array(n);
  const minDist = new Float64Array(n).fill(Infinity);
  const from = new Int32Array(n).fill(-1);
  const edges: Edge[] = [];
  let current = 0;
  inTree[0] = 1;
  for (let step = 1; step < n; step++) {
    let next = -1;
    let nextDist = Infinity;
    const cc = core[current]!;
    for (let j = 0; j < n; j++) {
      if (inTree[j]) continue;
      let w = dist(s, current, j);
      if (cc > w) w = cc;
      if (core[j]! > w) w = core[j]!;
      if (w < minDist[j]!) {
        minDist[j] = w;
        from[j] = current;
      }
      if (minDist[j]! < nextDist) {
        nextDist = minDist[j]!;
        next = j;
      }
    }
    inTree[next] = 1;
    edges.push({ a: from[next]!, b: next, weight: nextDist });
    current = next;
  }
  return edges;
}
