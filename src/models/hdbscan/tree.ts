import type { Edge } from './graph.ts';

// From the minimum spanning tree to clusters, as the hdbscan library does it (Campello et al.
// 2013, McInnes et al. 2017): single-linkage hierarchy, condensed tree (min_cluster_size),
// cluster stability, excess-of-mass or leaf selection, labels, membership probabilities and
// GLOSH outlier scores.

/** A row of the condensed tree: `child` (a row < n, or a cluster >= n) leaves `parent` at `lambda`. */
export interface CondensedRow {
  parent: number;
  child: number;
  lambda: number;
  size: number;
}

export interface Hierarchy {
  left: Int32Array;
  right: Int32Array;
  distance: Float64Array;
  size: Int32Array; // size of node n + i
}

const lambdaOf = (distance: number) => 1 / Math.max(distance, 1e-300);

/** Single-linkage merges in order of edge weight (union-find); node n + i is the i-th merge. */
export function singleLinkage(n: number, edges: Edge[]): Hierarchy {
  // (weight, smaller row, larger row): the order both spanning-tree builders choose by
  const key = edges.map((e) => (e.a < e.b ? [e.a, e.b] : [e.b, e.a]) as [number, number]);
  const order = edges.map((_, i) => i).sort((x, y) => edges[x]!.weight - edges[y]!.weight || key[x]![0] - key[y]![0] || key[x]![1] - key[y]![1]);
  const parent = Int32Array.from({ length: 2 * n - 1 }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  const m = n - 1;
  const h: Hierarchy = { left: new Int32Array(m), right: new Int32Array(m), distance: new Float64Array(m), size: new Int32Array(m) };
  const sizeOf = (node: number) => (node < n ? 1 : h.size[node - n]!);
  order.forEach((e, i) => {
    const a = find(key[e]![0]);
    const b = find(key[e]![1]);
    h.left[i] = a;
    h.right[i] = b;
    h.distance[i] = edges[e]!.weight;
    h.size[i] = sizeOf(a) + sizeOf(b);
    parent[a] = n + i;
    parent[b] = n + i;
  });
  return h;
}

export function condense(h: Hierarchy, n: number, minClusterSize: number): CondensedRow[] {
  const root = 2 * n - 2;
  const sizeOf = (node: number) => (node < n ? 1 : h.size[node - n]!);
  const relabel = new Int32Array(2 * n - 1);
  relabel[root] = n;
  let nextLabel = n + 1;
  const rows: CondensedRow[] = [];
  const leaves = (node: number, out: number[]) => {
    const stack = [node];
    while (stack.length) {
      const x = stack.pop()!;
      if (x < n) out.push(x);
      else stack.push(h.left[x - n]!, h.right[x - n]!);
    }
    return out;
  };
  // Breadth-first from the root, as the reference implementation, so cluster labels match.
  const queue = [root];
  for (let qi = 0; qi < queue.length; qi++) {
    const node = queue[qi]!;
    if (node < n) continue;
    const i = node - n;
    const [left, right] = [h.left[i]!, h.right[i]!];
    const lambda = lambdaOf(h.distance[i]!);
    const lc = sizeOf(left);
    const rc = sizeOf(right);
    const p = relabel[node]!;
    if (lc >= minClusterSize && rc >= minClusterSize) {
      relabel[left] = nextLabel++;
      rows.push({ parent: p, child: relabel[left]!, lambda, size: lc });
      relabel[right] = nextLabel++;
      rows.push({ parent: p, child: relabel[right]!, lambda, size: rc });
      queue.push(left, right);
    } else if (lc < minClusterSize && rc < minClusterSize) {
      for (const x of leaves(left, [])) rows.push({ parent: p, child: x, lambda, size: 1 });
      for (const x of leaves(right, [])) rows.push({ parent: p, child: x, lambda, size: 1 });
    } else if (lc < minClusterSize) {
      relabel[right] = p;
      for (const x of leaves(left, [])) rows.push({ parent: p, child: x, lambda, size: 1 });
      queue.push(right);
    } else {
      relabel[left] = p;
      for (const x of leaves(right, [])) rows.push({ parent: p, child: x, lambda, size: 1 });
      queue.push(left);
    }
  }
  return rows;
}

export interface Selection {
  labels: Int32Array; // condensed-tree cluster of each row, or -1 for noise
  selected: number[];
  probabilities: Float64Array;
  outlierScores: Float64Array;
  birth: Map<number, number>; // lambda at which each cluster appears
  maxLambda: Map<number, number>; // largest lambda of each cluster's direct rows
  maxLambdaBelow: Map<number, number>; // largest lambda anywhere in each cluster's subtree
}

export function selectClusters(
  rows: CondensedRow[],
  n: number,
  opts: { method: 'eom' | 'leaf'; epsilon: number },
): Selection {
  const clusters = new Set<number>([n]);
  const birth = new Map<number, number>([[n, 0]]);
  const children = new Map<number, number[]>();
  for (const r of rows) {
    if (r.size > 1) {
      clusters.add(r.child);
      birth.set(r.child, r.lambda);
      if (!children.has(r.parent)) children.set(r.parent, []);
      children.get(r.parent)!.push(r.child);
    }
  }
  const stability = new Map<number, number>([...clusters].map((c) => [c, 0]));
  for (const r of rows) stability.set(r.parent, stability.get(r.parent)! + (r.lambda - birth.get(r.parent)!) * r.size);

  const descendants = (c: number): number[] => {
    const out: number[] = [];
    const stack = [...(children.get(c) ?? [])];
    while (stack.length) {
      const x = stack.pop()!;
      out.push(x);
      stack.push(...(children.get(x) ?? []));
    }
    return out;
  };
  const isCluster = new Map<number, boolean>();
  const candidates = [...clusters].filter((c) => c !== n).sort((a, b) => b - a); // children before parents
  if (opts.method === 'leaf') {
    for (const c of candidates) isCluster.set(c, !(children.get(c)?.length));
  } else {
    const stab = new Map(stability);
    for (const c of candidates) isCluster.set(c, true);
    for (const c of candidates) {
      const sub = (children.get(c) ?? []).reduce((s, x) => s + stab.get(x)!, 0);
      if (sub > stab.get(c)!) {
        isCluster.set(c, false);
        stab.set(c, sub);
      } else for (const x of descendants(c)) isCluster.set(x, false);
    }
  }
  let selected = candidates.filter((c) => isCluster.get(c));
  if (opts.epsilon > 0) {
    // cluster_selection_epsilon: a cluster born below distance epsilon is replaced by its
    // ancestor born at epsilon or above (not the root).
    const parentOf = new Map<number, number>();
    for (const [p, cs] of children) for (const c of cs) parentOf.set(c, p);
    const limit = 1 / opts.epsilon;
    const lifted = new Set<number>();
    for (const c of selected) {
      let x = c;
      while (birth.get(x)! > limit && parentOf.get(x) !== undefined && parentOf.get(x) !== n) x = parentOf.get(x)!;
      lifted.add(x);
    }
    selected = [...lifted].filter((c) => !descendantsOfAny(c, lifted, parentOf));
  }

  // Labels: union every condensed edge except those entering a selected cluster; each row's
  // representative is then its nearest selected ancestor, or the root (noise).
  const chosen = new Set(selected);
  const up = new Map<number, number>();
  for (const r of rows) if (!chosen.has(r.child)) up.set(r.child, r.parent);
  const labelOf = (x: number): number => {
    let y = x;
    while (up.has(y)) y = up.get(y)!;
    return y === n ? -1 : y;
  };
  const labels = new Int32Array(n);
  const pointLambda = new Float64Array(n);
  const pointParent = new Int32Array(n);
  for (const r of rows) {
    if (r.size === 1 && r.child < n) {
      pointLambda[r.child] = r.lambda;
      pointParent[r.child] = r.parent;
    }
  }
  for (let i = 0; i < n; i++) labels[i] = labelOf(i);

  // Membership probability: lambda of the row, capped at the cluster's largest direct lambda.
  const deaths = new Map<number, number>();
  for (const r of rows) deaths.set(r.parent, Math.max(deaths.get(r.parent) ?? 0, r.lambda));
  const probabilities = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = labels[i]!;
    if (c < 0) continue;
    const max = deaths.get(c) ?? 0;
    probabilities[i] = max === 0 || !Number.isFinite(max) ? 1 : Math.min(pointLambda[i]!, max) / max;
  }
  // GLOSH: compare each row's lambda with the largest lambda anywhere below its parent.
  const glosh = new Map(deaths);
  for (const c of [...clusters].sort((a, b) => b - a)) {
    for (const x of children.get(c) ?? []) glosh.set(c, Math.max(glosh.get(c) ?? 0, glosh.get(x) ?? 0));
  }
  const outlierScores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const max = glosh.get(pointParent[i]!) ?? 0;
    outlierScores[i] = max > 0 && Number.isFinite(max) ? (max - pointLambda[i]!) / max : 0;
  }
  return { labels, selected, probabilities, outlierScores, birth, maxLambda: deaths, maxLambdaBelow: glosh };
}

function descendantsOfAny(c: number, set: Set<number>, parentOf: Map<number, number>): boolean {
  let x = parentOf.get(c);
  while (x !== undefined) {
    if (set.has(x)) return true;
    x = parentOf.get(x);
  }
  return false;
}
