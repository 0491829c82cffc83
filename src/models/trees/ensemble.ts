import { Random } from '../../util/random.ts';
import { baseMargins, gradients, meanLoss, type Target } from '../supervised/target.ts';
import type { Binned } from './bins.ts';
import { growTree, leafValueBinned, type Tree, type TreeParams } from './grow.ts';

// Gradient boosting (boosted_tree_*) and random forests (random_forest_*) on binned data, as
// XGBoost does them for BigQuery ML: a forest is one boosting round of num_parallel_tree trees
// grown on the gradients at the base score, averaged, with learning rate 1.

export interface EnsembleParams extends TreeParams {
  rounds: number; // max_iterations (a forest has one round)
  numParallelTree: number;
  subsample: number; // share of training rows each tree sees (without replacement)
  earlyStop: boolean;
  minRelProgress: number;
  seed: number;
  deadline?: number;
}

export interface Ensemble {
  base: number[]; // one per margin
  trees: (Tree & { group: number })[]; // group = which margin the tree adds to
}

export interface RoundInfo {
  iteration: number;
  loss: number;
  evalLoss: number | null;
  learnRate: number;
  durationMs: number;
}

export async function trainEnsemble(
  data: Binned,
  target: Target,
  train: Uint32Array,
  evalRows: Uint32Array | null,
  p: EnsembleParams,
  onRound: (info: RoundInfo) => Promise<void>,
): Promise<{ model: Ensemble; history: RoundInfo[]; stoppedEarly: boolean; timedOut: boolean }> {
  const { n } = data;
  const K = target.K;
  const rng = new Random(p.seed);
  const base = baseMargins(target, train);
  const F = new Float64Array(n * K);
  for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) F[i * K + k] = base[k]!;
  const gAll = new Float64Array(n * K);
  const hAll = new Float64Array(n * K);
  const g = new Float64Array(n);
  const h = new Float64Array(n);
  const trees: Ensemble['trees'] = [];
  const history: RoundInfo[] = [];
  const scored = evalRows ? concat(train, evalRows) : train;
  const sampleSize = Math.max(1, Math.round(train.length * p.subsample));
  let stoppedEarly = false;
  let timedOut = false;
  let previous = Infinity;
  for (let round = 0; round < p.rounds; round++) {
    const started = performance.now();
    gradients(target, F, train, gAll, hAll);
    const roundTrees: (Tree & { group: number })[] = [];
    for (let t = 0; t < p.numParallelTree; t++) {
      const rows = p.subsample < 1 ? sampleRows(train, sampleSize, rng) : Uint32Array.from(train);
      for (let k = 0; k < K; k++) {
        for (const i of rows) {
          g[i] = gAll[i * K + k]!;
          h[i] = hAll[i * K + k]!;
        }
        const tree = growTree(data, rows, g, h, { ...p, learnRate: p.learnRate / p.numParallelTree }, rng);
        roundTrees.push({ ...tree, group: k });
      }
    }
    for (const tree of roundTrees) {
      const k = tree.group;
      for (const i of scored) F[i * K + k] += leafValueBinned(tree, data, i);
    }
    trees.push(...roundTrees);
    const loss = meanLoss(target, F, train);
    const evalLoss = evalRows && evalRows.length ? meanLoss(target, F, evalRows) : null;
    const info = { iteration: round, loss, evalLoss, learnRate: p.learnRate, durationMs: performance.now() - started };
    history.push(info);
    await onRound(info);
    const watched = evalLoss ?? loss;
    if (p.earlyStop && round > 0 && (previous - watched) / Math.abs(previous || 1) < p.minRelProgress) {
      stoppedEarly = round + 1 < p.rounds;
      break;
    }
    previous = watched;
    if (p.deadline !== undefined && Date.now() > p.deadline) {
      timedOut = round + 1 < p.rounds;
      break;
    }
  }
  // Only what scoring needs is kept (the bins were for training).
  const model: Ensemble = { base, trees: trees.map(({ bin: _bin, ...t }) => ({ ...t, bin: [] })) };
  return { model, history, stoppedEarly, timedOut };
}

function sampleRows(train: Uint32Array, m: number, rng: Random): Uint32Array {
  // Partial Fisher-Yates on a copy: m distinct rows.
  const a = Uint32Array.from(train);
  for (let i = 0; i < m; i++) {
    const j = i + rng.int(a.length - i);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a.subarray(0, m).sort();
}

function concat(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Margins of model-space rows (row-major n x d), as the compiled SQL computes them. */
export function ensembleMargins(m: Ensemble, X: Float64Array, n: number, d: number): Float64Array {
  const K = m.base.length;
  const F = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < K; k++) F[i * K + k] = m.base[k]!;
    for (const t of m.trees) {
      let node = 0;
      while (t.feature[node]! >= 0) node = X[i * d + t.feature[node]!]! <= t.threshold[node]! ? t.left[node]! : t.right[node]!;
      F[i * K + t.group] += t.value[node]!;
    }
  }
  return F;
}

/** Per input dimension: split count, total gain and total cover (hessian) of its splits. */
export function splitImportance(m: Ensemble, dims: number): { weight: Float64Array; gain: Float64Array; cover: Float64Array } {
  const weight = new Float64Array(dims);
  const gain = new Float64Array(dims);
  const cover = new Float64Array(dims);
  for (const t of m.trees) {
    t.feature.forEach((f, node) => {
      if (f < 0) return;
      weight[f] += 1;
      gain[f] += t.gain[node]!;
      cover[f] += t.cover[node]!;
    });
  }
  return { weight, gain, cover };
}
