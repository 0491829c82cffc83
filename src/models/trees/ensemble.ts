import { Random } from '../../util/random.ts';
import { baseMargins, binaryGradientsFromExp, binaryLossFromExp, gradients, meanLoss, type Target } from '../supervised/target.ts';
import type { Binned } from './bins.ts';
import { growForest } from './forest.ts';
import { concat, copyClassPairs, sampleRows } from './forest-share.ts';
import { growTree, TreeWork, type Tree, type TreeParams } from './grow.ts';
import { pacer } from '../../util/yield.ts';

// Gradient boosting (boosted_tree_*) and random forests (random_forest_*) on binned data, as
// XGBoost does them for BigQuery ML: a forest is one boosting round of num_parallel_tree trees
// grown on the gradients at the base score, averaged, with learning rate 1.

export interface EnsembleParams extends TreeParams {
  rounds: number; // max_iterations (a forest has one round)
  numParallelTree: number;
  subsample: number; // share of training rows each tree sees (without replacement)
  earlyStop: boolean;
  minRelProgress: number;
  patience: number; // rounds without progress on the evaluation rows before stopping
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

/**
 * Early stopping: with evaluation rows, stop once `patience` rounds have not lowered the
 * evaluation loss by more than min_rel_progress (relative) and keep the best round's trees;
 * without, stop when a round lowers the training loss by less than min_rel_progress.
 */
export async function trainEnsemble(
  data: Binned,
  X: Float64Array, // model space, row-major n x nf (evaluation rows are scored on raw values)
  target: Target,
  train: Uint32Array,
  evalRows: Uint32Array | null,
  p: EnsembleParams,
  onRound: (info: RoundInfo) => Promise<void>,
): Promise<{ model: Ensemble; margins: Float64Array; history: RoundInfo[]; stoppedEarly: boolean; timedOut: boolean }> {
  const { n, nf } = data;
  const K = target.K;
  const rng = new Random(p.seed);
  const base = baseMargins(target, train);
  let F: Float64Array = new Float64Array(n * K);
  for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) F[i * K + k] = base[k]!;
  // Binary: exp(-margin) per row, updated by a factor per leaf (see binaryGradientsFromExp).
  const E = target.problem === 'binary' ? F.map((m) => Math.exp(-m)) : null;
  // Gradient pairs of every margin (n x K pairs); a multiclass tree reads one class's copy.
  const ghAll = new Float64Array(2 * n * K);
  let trees: Ensemble['trees'] = [];
  const history: RoundInfo[] = [];
  const sampleSize = Math.max(1, Math.round(train.length * p.subsample));
  const hasEval = evalRows !== null && evalRows.length > 0;
  let stoppedEarly = false;
  let timedOut = false;
  let best = { loss: Infinity, round: -1, trees: 0 };
  const work = new TreeWork();
  const gh = K === 1 ? ghAll : work.gradientPairs(n);
  // Every tree labels the leaf of every training and evaluation row: its sample's rows as it
  // splits them, the others as passengers that follow the splits.
  const whole = p.subsample >= 1;
  const wholeRows = new Uint32Array(train.length);
  const evalCopy = new Uint32Array(evalRows?.length ?? 0);
  const labelled = hasEval ? concat(train, evalRows!) : train;
  const inSample = whole ? null : new Uint8Array(n);
  const forest = p.rounds === 1 && p.numParallelTree >= 2;
  for (let round = 0; round < p.rounds; round++) {
    const started = performance.now();
    // The loss of the model so far comes with the gradients; it is the previous round's.
    const trainLoss = E ? binaryGradientsFromExp(target, F, E, train, ghAll) : gradients(target, F, train, ghAll);
    if (round > 0) {
      history[round - 1]!.loss = trainLoss;
      const prev = round > 1 ? history[round - 2]!.loss : Infinity;
      if (!hasEval && p.earlyStop && round > 1 && (prev - trainLoss) / Math.abs(prev || 1) < p.minRelProgress) {
        stoppedEarly = true;
        break;
      }
    }
    let roundTrees: (Tree & { group: number })[] = [];
    if (forest) {
      // One round of independent trees: on every core (forest.ts).
      const grown = await growForest(data, { gh: ghAll, K, train, evalRows: hasEval ? evalRows! : null, params: p, round });
      roundTrees = grown.trees.map(({ index: _, ...tree }) => tree);
      for (const i of labelled) {
        for (let k = 0; k < K; k++) F[i * K + k] += grown.delta[i * K + k]!;
        if (E) E[i] = Math.exp(-F[i]!);
      }
    } else {
      for (let t = 0; t < p.numParallelTree; t++) {
        let rows: Uint32Array;
        let passengers: Uint32Array;
        if (whole) {
          rows = wholeRows;
          rows.set(train); // the previous tree reordered them
          passengers = evalCopy;
          if (hasEval) passengers.set(evalRows!);
        } else {
          ({ rows, passengers } = sampleRows(train, sampleSize, rng, inSample!, hasEval ? evalRows! : null));
        }
        for (let k = 0; k < K; k++) {
          if (K > 1) copyClassPairs(ghAll, gh, rows, K, k);
          const { tree, leafOf } = growTree(data, rows, gh, { ...p, learnRate: p.learnRate / p.numParallelTree }, rng, work, passengers);
          addLeafValues(tree, leafOf, labelled, F, K, k, E);
          roundTrees.push({ ...tree, group: k });
        }
      }
    }
    trees.push(...roundTrees);
    const evalLoss = !hasEval ? null : E ? binaryLossFromExp(target, F, E, evalRows!) : meanLoss(target, F, evalRows!);
    const info = { iteration: round, loss: NaN, evalLoss, learnRate: p.learnRate, durationMs: performance.now() - started };
    history.push(info);
    await onRound(info);
    if (hasEval && p.earlyStop) {
      if (best.round < 0 || evalLoss! < best.loss * (1 - p.minRelProgress)) best = { loss: evalLoss!, round, trees: trees.length };
      if (round - best.round >= p.patience) {
        stoppedEarly = true;
        break;
      }
    }
    if (p.deadline !== undefined && Date.now() > p.deadline) {
      timedOut = round + 1 < p.rounds;
      break;
    }
  }
  if (history.length && Number.isNaN(history[history.length - 1]!.loss)) history[history.length - 1]!.loss = meanLoss(target, F, train);
  if (hasEval && p.earlyStop && best.round >= 0 && best.trees < trees.length) {
    // Keep the best round: recompute the predictions of the kept trees (same order, same sums).
    trees = trees.slice(0, best.trees);
    history.length = best.round + 1;
    F = await ensembleMargins({ base, trees }, X, n, nf);
  }
  return { model: { base, trees }, margins: F, history, stoppedEarly, timedOut };
}

/** Adds each labelled row's leaf value to F[row * K + k]; with E (binary), E[row] *= exp(-value). */
function addLeafValues(tree: Tree, leafOf: Int32Array, rows: Uint32Array, F: Float64Array, K: number, k: number, E: Float64Array | null): void {
  const value = Float64Array.from(tree.value);
  if (E) {
    const factor = value.map((v) => Math.exp(-v));
    for (let r = 0; r < rows.length; r++) {
      const i = rows[r]!;
      const node = leafOf[i]!;
      F[i] += value[node]!;
      E[i] *= factor[node]!;
    }
  } else {
    for (let r = 0; r < rows.length; r++) {
      const i = rows[r]!;
      F[i * K + k] += value[leafOf[i]!]!;
    }
  }
}

/**
 * Margins of model-space rows (row-major n x d), summed in the order the compiled SQL sums them;
 * the event loop runs between trees at least every 50 ms.
 */
export async function ensembleMargins(m: Ensemble, X: Float64Array, n: number, d: number): Promise<Float64Array> {
  const K = m.base.length;
  const F = new Float64Array(n * K);
  for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) F[i * K + k] = m.base[k]!;
  const pace = pacer();
  for (const t of m.trees) {
    await pace();
    const feature = Int32Array.from(t.feature);
    const threshold = Float64Array.from(t.threshold);
    const left = Int32Array.from(t.left);
    const right = Int32Array.from(t.right);
    const value = Float64Array.from(t.value);
    for (let i = 0; i < n; i++) {
      let node = 0;
      while (feature[node]! >= 0) node = X[i * d + feature[node]!]! <= threshold[node]! ? left[node]! : right[node]!;
      F[i * K + t.group] += value[node]!;
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
