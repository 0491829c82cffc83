import { UserError } from '../../util/errors.ts';
import { makeSpace, rowDist2, type DistanceType, type Space } from '../kmeans/geometry.ts';
import { coreDistances, mutualReachabilityMst, type Edge } from './graph.ts';
import { spatialSpanningTree } from './spatial.ts';
import { condense, selectClusters, singleLinkage } from './tree.ts';

export interface HdbscanOptions {
  minClusterSize: number;
  minSamples: number;
  method: 'eom' | 'leaf';
  epsilon: number;
  distance: DistanceType;
  /** Called between the phases (may throw to cancel). */
  checkpoint?: (phase: string) => Promise<void>;
  /** The helper thread's bundled entry (href): the tree passes then use both cores. */
  helperEntry?: string;
  /** The O(n^2) passes whatever the dimension (the tests' oracle). */
  exact?: boolean;
}

/**
 * Up to this many dimensions the core distances and the spanning tree come from a k-d tree on
 * both threads (O(n log n) in low dimensions); above it from the exact O(n^2) passes on one,
 * which the tree stops beating in high dimensions. The tree's lead grows with the rows, so the
 * crossover does: 24 dimensions up to 10,000 rows, 20 more per doubling, at most 64
 * (docs/performance.md, HDBSCAN at scale: the crossover).
 */
export function treeMaxDims(n: number): number {
  return Math.min(64, Math.floor(24 + 20 * Math.log2(Math.max(1, n / 10_000))));
}

export interface HdbscanModel {
  space: Space;
  k: number; // clusters found
  labels: Int32Array; // 0..k-1 in order of size (largest first), -1 = noise
  probabilities: Float64Array;
  outlierScores: Float64Array;
  /**
   * Assignment of new rows: per cluster, exemplar rows (farthest-point sample of the members,
   * from the densest) and its reach, the largest of its members' distance to the nearest
   * exemplar and core distance; a new row within reach of its nearest exemplar joins.
   */
  exemplars: number[][];
  reach: number[];
  probabilityScale: number[]; // 1 / largest lambda of the cluster: membership of new rows
  outlierScale: number[]; // 1 / largest lambda below the cluster: outlier score of new rows
}

export const MAX_EXEMPLARS = 32;

export function defaultMinClusterSize(rows: number): number {
  return Math.max(5, Math.round(rows / 100));
}

/** HDBSCAN* on an n x d model-space matrix. */
export async function trainHdbscan(X: Float64Array, n: number, d: number, o: HdbscanOptions): Promise<HdbscanModel> {
  if (o.minClusterSize > n) {
    throw new UserError(`option "min_cluster_size" (${o.minClusterSize}) must not exceed the number of training rows (${n})`);
  }
  const space = makeSpace(X, n, d, o.distance);
  const { core, mst } = await spanningTree(space, o);
  await o.checkpoint?.('clusters');
  const rows = condense(singleLinkage(n, mst), n, o.minClusterSize);
  const sel = selectClusters(rows, n, { method: o.method, epsilon: o.epsilon });
  if (sel.selected.length === 0) {
    throw new UserError(
      `HDBSCAN found no cluster: every row is noise at min_cluster_size ${o.minClusterSize}; lower "min_cluster_size" or "min_samples"`,
    );
  }
  // Cluster ids in order of size, largest first (ties: the tree's order).
  const size = new Map<number, number>(sel.selected.map((c) => [c, 0]));
  for (const l of sel.labels) if (l >= 0) size.set(l, size.get(l)! + 1);
  const order = [...sel.selected].sort((a, b) => size.get(b)! - size.get(a)! || a - b);
  const id = new Map(order.map((c, i) => [c, i]));
  const labels = Int32Array.from(sel.labels, (l) => (l < 0 ? -1 : id.get(l)!));
  const k = order.length;

  const exemplars: number[][] = [];
  const reach: number[] = [];
  for (let c = 0; c < k; c++) {
    const members: number[] = [];
    for (let i = 0; i < n; i++) if (labels[i] === c) members.push(i);
    const ex = spreadExemplars(space, members, core);
    exemplars.push(ex);
    // A new row joins when it is as close to an exemplar as the members are to theirs, or to
    // their own neighbours (core distance): members that are exemplars still count their core.
    let r = 0;
    for (const i of members) r = Math.max(r, nearest(space, i, ex), core[i]!);
    reach.push(r);
  }
  const scale = (lambda: number | undefined) => (lambda && Number.isFinite(lambda) && lambda > 0 ? 1 / lambda : 0);
  return {
    space,
    k,
    labels,
    probabilities: sel.probabilities,
    outlierScores: sel.outlierScores,
    exemplars,
    reach,
    probabilityScale: order.map((c) => scale(sel.maxLambda.get(c))),
    outlierScale: order.map((c) => scale(sel.maxLambdaBelow.get(c))),
  };
}

/** Core distances and the mutual-reachability spanning tree, by the tree passes or the exact ones. */
async function spanningTree(space: Space, o: HdbscanOptions): Promise<{ core: Float64Array; mst: Edge[] }> {
  const { n, d } = space;
  if (d <= treeMaxDims(n) && !o.exact) {
    const r = await spatialSpanningTree(space.X, n, d, o.minSamples, o.helperEntry ? new URL(o.helperEntry) : null, async (phase) => o.checkpoint?.(phase));
    if (space.distance === 'cosine') {
      // unit rows: Euclidean distance = sqrt(2) x the cosine metric sqrt(1 - cos)
      for (let i = 0; i < n; i++) r.core[i] = r.core[i]! * Math.SQRT1_2;
      for (const e of r.edges) e.weight *= Math.SQRT1_2;
    }
    return { core: r.core, mst: r.edges };
  }
  await o.checkpoint?.('core distances');
  const core = coreDistances(space, o.minSamples);
  await o.checkpoint?.('spanning tree');
  const mst = mutualReachabilityMst(space, core);
  return { core, mst };
}

/** Farthest-point sampling from the densest member: exemplars that cover the whole cluster. */
function spreadExemplars(s: Space, members: number[], core: Float64Array): number[] {
  let start = members[0]!;
  for (const i of members) if (core[i]! < core[start]!) start = i;
  const chosen = [start];
  const gap = new Float64Array(members.length).fill(Infinity);
  while (chosen.length < Math.min(MAX_EXEMPLARS, members.length)) {
    const last = chosen[chosen.length - 1]!;
    let far = -1;
    members.forEach((i, m) => {
      gap[m] = Math.min(gap[m]!, Math.sqrt(rowDist2(s, i, s.X, last * s.d, 1)));
      if (far < 0 || gap[m]! > gap[far]!) far = m;
    });
    if (gap[far]! === 0) break;
    chosen.push(members[far]!);
  }
  return chosen;
}

function nearest(s: Space, i: number, ex: number[]): number {
  let best = Infinity;
  for (const e of ex) best = Math.min(best, Math.sqrt(rowDist2(s, i, s.X, e * s.d, 1)));
  return best;
}
