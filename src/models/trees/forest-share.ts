import { Random } from '../../util/random.ts';
import type { Binned } from './bins.ts';
import { growTree, TreeWork, type Tree, type TreeParams } from './grow.ts';

// One thread's share of a forest's trees (forest.ts runs the shares on every core): each tree
// draws its rows and features from a seed of its own, so the trees are the same on any number
// of threads; the share sums its trees' leaf values per row.

export interface ForestTask {
  gh: Float64Array; // gradient pairs of every margin, n x K pairs (shared memory when threaded)
  K: number;
  train: Uint32Array;
  evalRows: Uint32Array | null;
  params: TreeParams & { subsample: number; numParallelTree: number; seed: number };
  round: number;
}

export interface ForestShare {
  trees: (Tree & { group: number; index: number })[];
  delta: Float64Array; // per row and margin: the sum of this share's trees' leaf values
}

/** The seed of tree `t` of round `round`. */
function treeSeed(seed: number, round: number, t: number): number {
  return (seed ^ Math.imul(round + 1, 0x9e3779b1) ^ Math.imul(t + 1, 0x85ebca6b)) >>> 0;
}

/** Grows the trees t = first, first + step, ... of the round (on this thread). */
export function growForestShare(data: Binned, task: ForestTask, first: number, step: number): ForestShare {
  const { n } = data;
  const { K, train, evalRows, params: p } = task;
  const work = new TreeWork();
  const gh = K === 1 ? task.gh : work.gradientPairs(n);
  const delta = new Float64Array(n * K);
  const trees: ForestShare['trees'] = [];
  const m = Math.max(1, Math.round(train.length * p.subsample));
  const inSample = new Uint8Array(n);
  const labelled = evalRows ? concat(train, evalRows) : train;
  const treeParams = { ...p, learnRate: p.learnRate / p.numParallelTree };
  for (let t = first; t < p.numParallelTree; t += step) {
    const rng = new Random(treeSeed(p.seed, task.round, t));
    const { rows, passengers } = p.subsample >= 1 ? { rows: Uint32Array.from(train), passengers: evalRows ? Uint32Array.from(evalRows) : new Uint32Array(0) } : sampleRows(train, m, rng, inSample, evalRows);
    for (let k = 0; k < K; k++) {
      if (K > 1) copyClassPairs(task.gh, gh, rows, K, k);
      const { tree, leafOf } = growTree(data, rows, gh, treeParams, rng, work, passengers);
      const value = Float64Array.from(tree.value);
      for (let r = 0; r < labelled.length; r++) {
        const i = labelled[r]!;
        delta[i * K + k] += value[leafOf[i]!]!;
      }
      trees.push({ ...tree, group: k, index: t * K + k });
    }
  }
  return { trees, delta };
}

/**
 * m distinct training rows drawn by a partial Fisher-Yates shuffle, and the rest (with the
 * evaluation rows) as passengers; both in the order of `train`.
 */
export function sampleRows(train: Uint32Array, m: number, rng: Random, inSample: Uint8Array, evalRows: Uint32Array | null): { rows: Uint32Array; passengers: Uint32Array } {
  const a = Uint32Array.from(train);
  for (let i = 0; i < m; i++) {
    const j = i + rng.int(a.length - i);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
    inSample[a[i]!] = 1;
  }
  const rows = new Uint32Array(m);
  const passengers = new Uint32Array(train.length - m + (evalRows?.length ?? 0));
  let r = 0;
  let q = 0;
  for (const i of train) {
    if (inSample[i]) rows[r++] = i;
    else passengers[q++] = i;
    inSample[i] = 0;
  }
  if (evalRows) passengers.set(evalRows, q);
  return { rows, passengers };
}

export function concat(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Class k's gradient pairs of the listed rows, from n x K pairs into the per-row pairs a tree reads. */
export function copyClassPairs(ghAll: Float64Array, gh: Float64Array, rows: Uint32Array, K: number, k: number): void {
  for (let r = 0; r < rows.length; r++) {
    const i = rows[r]!;
    gh[2 * i] = ghAll[2 * (i * K + k)]!;
    gh[2 * i + 1] = ghAll[2 * (i * K + k) + 1]!;
  }
}
