import { rowDist2, type Space } from '../models/kmeans/geometry.ts';
import { Random } from '../util/random.ts';

// Density-Based Clustering Validation (Moulavi et al. 2014), the score made for density
// clusters: per cluster, the sparseness inside (the largest edge of its mutual-reachability
// MST among internal nodes) against the separation from the nearest other cluster (the
// smallest mutual reachability between internal nodes). In [-1, 1], higher is better; noise
// rows count in the total but belong to no cluster. On a seeded sample of at most 5,000 rows.

export const DBCV_SAMPLE = 5000;

export function dbcv(s: Space, labels: Int32Array, seed: number): number | null {
  const { n, d } = s;
  let rows = Int32Array.from({ length: n }, (_, i) => i);
  if (n > DBCV_SAMPLE) {
    const rng = new Random(seed ^ 0x2545f491);
    for (let i = 0; i < DBCV_SAMPLE; i++) {
      const j = i + rng.int(n - i);
      [rows[i], rows[j]] = [rows[j]!, rows[i]!];
    }
    rows = rows.slice(0, DBCV_SAMPLE);
  }
  const total = rows.length;
  const byCluster = new Map<number, number[]>();
  for (const r of rows) {
    const l = labels[r]!;
    if (l < 0) continue;
    if (!byCluster.has(l)) byCluster.set(l, []);
    byCluster.get(l)!.push(r);
  }
  const clusters = [...byCluster.keys()];
  if (clusters.length < 2) return null;
  const dist = (a: number, b: number) => Math.max(Math.sqrt(rowDist2(s, a, s.X, b * d, 1)), 1e-12);
  // All-points core distance: a density estimate from every other member of the cluster.
  const core = new Map<number, number>();
  for (const members of byCluster.values()) {
    const m = members.length;
    for (const a of members) {
      if (m === 1) {
        core.set(a, 0);
        continue;
      }
      // (sum over others of (1/dist)^d / (m - 1))^(-1/d), in log space to avoid overflow.
      let mx = -Infinity;
      const logs: number[] = [];
      for (const b of members) {
        if (a === b) continue;
        const v = -d * Math.log(dist(a, b));
        logs.push(v);
        if (v > mx) mx = v;
      }
      let acc = 0;
      for (const v of logs) acc += Math.exp(v - mx);
      core.set(a, Math.exp(-(mx + Math.log(acc) - Math.log(m - 1)) / d));
    }
  }
  const mreach = (a: number, b: number) => Math.max(core.get(a)!, core.get(b)!, dist(a, b));
  const internal = new Map<number, number[]>();
  const sparseness = new Map<number, number>();
  for (const [c, members] of byCluster) {
    const m = members.length;
    if (m < 2) {
      internal.set(c, members);
      sparseness.set(c, 0);
      continue;
    }
    // Prim on the cluster's mutual-reachability graph.
    const inTree = new Uint8Array(m);
    const best = new Float64Array(m).fill(Infinity);
    const from = new Int32Array(m).fill(-1);
    const degree = new Int32Array(m);
    const edges: [number, number, number][] = [];
    let cur = 0;
    inTree[0] = 1;
    for (let step = 1; step < m; step++) {
      let next = -1;
      for (let j = 0; j < m; j++) {
        if (inTree[j]) continue;
        const w = mreach(members[cur]!, members[j]!);
        if (w < best[j]!) {
          best[j] = w;
          from[j] = cur;
        }
        if (next < 0 || best[j]! < best[next]!) next = j;
      }
      inTree[next] = 1;
      edges.push([from[next]!, next, best[next]!]);
      degree[from[next]!]!++;
      degree[next]!++;
      cur = next;
    }
    const inner = members.filter((_, i) => degree[i]! > 1);
    const innerEdges = edges.filter(([a, b]) => degree[a]! > 1 && degree[b]! > 1);
    internal.set(c, inner.length ? inner : members);
    sparseness.set(c, Math.max(0, ...(innerEdges.length ? innerEdges : edges).map((e) => e[2])));
  }
  let score = 0;
  for (const c of clusters) {
    let separation = Infinity;
    for (const o of clusters) {
      if (o === c) continue;
      for (const a of internal.get(c)!) for (const b of internal.get(o)!) separation = Math.min(separation, mreach(a, b));
    }
    const sp = sparseness.get(c)!;
    const denom = Math.max(separation, sp);
    const v = denom > 0 ? (separation - sp) / denom : 0;
    score += (byCluster.get(c)!.length / total) * v;
  }
  return score;
}
