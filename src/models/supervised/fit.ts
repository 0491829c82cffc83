import type { FeatureSpec } from '../../features/prepare.ts';
import { classificationMetrics, confusionMatrix, predictClasses, regressionMetrics, rocCurve, scoreDeciles, type RocPoint, type ScoreDecile } from '../../metrics/supervised.ts';
import { UserError } from '../../util/errors.ts';
import { Random } from '../../util/random.ts';
import { linearMargins, trainLinearRegression, trainLogisticRegression } from '../linear/train.ts';
import type { Binned } from '../trees/bins.ts';
import { splitImportance, trainEnsemble, type Ensemble } from '../trees/ensemble.ts';
import { ensembleBaseline, flatten } from '../trees/shap.ts';
import type { SupervisedArtifact } from './artifact.ts';
import { dimFeatures, linearExplanation, linearImportance } from './explain.ts';
import { ensembleParams, familyOf, linearParams, type SupervisedType } from './options.ts';
import { outputs, type Problem, type Target } from './target.ts';
import { MAX_COMPILED_NODES, treeNodeCount } from './to-sql.ts';

// Fitting the supervised families (linear_reg, logistic_reg, boosted trees, forests) and auto's
// candidates: fit -> margins -> metrics and artifact. No database here: the job handler loads,
// splits and stores (src/jobs/train-supervised.ts).

export type Concrete = Exclude<SupervisedType, 'auto'>;

export interface Candidate {
  modelType: Concrete;
  options: Record<string, unknown>; // the candidate's hyperparameters (the model's options for a plain type)
}

export interface Trained {
  candidate: Candidate;
  spec: FeatureSpec;
  margins: Float64Array; // every loaded row, n x K
  linear?: { weights: number[][]; intercepts: number[] };
  ensemble?: Ensemble;
  history: { iteration: number; loss: number; evalLoss: number | null; learnRate: number | null; durationMs: number }[];
  importance: SupervisedArtifact['importance'];
  explanation?: SupervisedArtifact['explanation'];
  hyperparameters: Record<string, unknown>;
  seconds: number;
}

/** Metrics where a smaller value is the better model. */
export const LOWER_IS_BETTER = new Set(['mean_absolute_error', 'mean_squared_error', 'mean_squared_log_error', 'median_absolute_error', 'log_loss']);

/** A candidate's measured result, as a trial stores it. */
export interface FittedTrial {
  hyperparameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
  artifact: SupervisedArtifact;
}

/** auto's candidates: one linear model, two boosted-tree settings, a forest. */
export function autoCandidates(problem: Problem): Candidate[] {
  const c = problem !== 'regression';
  return [
    { modelType: c ? 'logistic_reg' : 'linear_reg', options: {} },
    { modelType: c ? 'boosted_tree_classifier' : 'boosted_tree_regressor', options: {} },
    // Shallower trees, more rounds: often better on small or noisy data.
    { modelType: c ? 'boosted_tree_classifier' : 'boosted_tree_regressor', options: { max_tree_depth: 3, max_iterations: 300, min_tree_child_weight: 5 } },
    { modelType: c ? 'random_forest_classifier' : 'random_forest_regressor', options: { num_parallel_tree: 50 } },
  ];
}

/** Fits one candidate on fitRows (evalRows, when given, drive early stopping); margins for every row. */
export async function trainCandidate(
  onProgress: (progress: Record<string, unknown>) => Promise<void>,
  cand: Candidate,
  p: { spec: FeatureSpec; X: Float64Array; binned?: Binned },
  target: Target,
  fitRows: Uint32Array,
  evalRows: Uint32Array | null,
  seed: number,
  deadline: number | undefined,
  label: string,
): Promise<Trained> {
  const started = performance.now();
  const family = familyOf(cand.modelType);
  const d = p.spec.dims;
  const n = p.X.length / d;
  if (family === 'linear') {
    const lp = linearParams(cand.options);
    await onProgress({ phase: 'train', candidate: label, model_type: cand.modelType });
    const m = target.problem === 'regression' ? trainLinearRegression(p.X, d, target, fitRows, lp) : await trainLogisticRegression(p.X, d, target, fitRows, lp);
    const margins = linearMargins(m, p.X, n, d);
    return {
      candidate: cand,
      spec: p.spec,
      margins,
      linear: { weights: m.weights, intercepts: m.intercepts },
      history: m.loss.map((loss, iteration) => ({ iteration, loss, evalLoss: null, learnRate: null, durationMs: 0 })),
      importance: linearImportance(p.spec, p.X, n, m.weights),
      explanation: linearExplanation(p.spec, p.X, n, m),
      hyperparameters: { model_type: cand.modelType, l1_reg: lp.l1, l2_reg: lp.l2, fit_intercept: lp.fitIntercept, iterations: m.iterations, converged: m.converged },
      seconds: (performance.now() - started) / 1000,
    };
  }
  const ep = ensembleParams(family, cand.options, seed, deadline);
  const res = await trainEnsemble(p.binned!, p.X, target, fitRows, evalRows, ep, (info) =>
    onProgress({ phase: 'train', candidate: label, model_type: cand.modelType, iteration: info.iteration, loss: info.loss, eval_loss: info.evalLoss }),
  );
  const nodes = treeNodeCount({ spec: p.spec, problem: target.problem, classes: target.classes, labelType: '', ensemble: res.model });
  if (nodes > MAX_COMPILED_NODES) {
    throw new UserError(
      `the ${cand.modelType} has ${nodes} tree nodes, more than the ${MAX_COMPILED_NODES} sqlml compiles into a SQL function; lower "max_tree_depth" or "num_parallel_tree", or raise "min_tree_child_weight"`,
    );
  }
  const margins = res.margins;
  const imp = splitImportance(res.model, d);
  return {
    candidate: cand,
    spec: p.spec,
    margins,
    ensemble: res.model,
    history: res.history,
    importance: p.spec.features.map((f) => {
      const w = imp.weight[f.offset]!;
      return { feature: f.name, weight: w, gain: w ? imp.gain[f.offset]! / w : 0, cover: w ? imp.cover[f.offset]! / w : 0, importance: imp.gain[f.offset]! };
    }),
    explanation: {
      baseline: ensembleBaseline(res.model),
      forest: flatten(res.model),
      dim_feature: dimFeatures(p.spec),
    },
    hyperparameters: {
      model_type: cand.modelType,
      max_iterations: ep.rounds,
      iterations: res.history.length,
      learn_rate: ep.learnRate,
      max_tree_depth: ep.maxDepth,
      num_parallel_tree: ep.numParallelTree,
      l1_reg: ep.l1,
      l2_reg: ep.l2,
      min_tree_child_weight: ep.minChildWeight,
      subsample: ep.subsample,
      colsample_bynode: ep.colsampleBynode,
      early_stop: ep.earlyStop,
      min_rel_progress: ep.minRelProgress,
      stopped_early: res.stoppedEarly,
      tree_nodes: nodes,
    },
    seconds: (performance.now() - started) / 1000,
  };
}

/** A fitted candidate measured on `rows`: its metrics and the artifact that scoring replays. */
export function evaluateCandidate(
  t: Trained,
  target: Target,
  rows: Uint32Array,
  label: { name: string; type: string },
): FittedTrial {
  const K = target.K;
  const m = rows.length;
  const F = new Float64Array(m * K);
  const y = new Float64Array(m);
  for (let r = 0; r < m; r++) {
    const i = rows[r]!;
    for (let k = 0; k < K; k++) F[r * K + k] = t.margins[i * K + k]!;
    y[r] = target.y[i]!;
  }
  const C = target.classes?.length ?? 0;
  const out = outputs(target.problem, F, m, C);
  let metrics: Record<string, unknown>;
  let evaluation: SupervisedArtifact['evaluation'];
  if (target.problem === 'regression') {
    metrics = { ...regressionMetrics(y, out) };
    evaluation = { rows: m, deciles: scoreDeciles(out, y) };
  } else {
    metrics = { ...classificationMetrics(y, out, C) };
    const predicted = predictClasses(out, m, C);
    let roc: RocPoint[] | undefined;
    let deciles: ScoreDecile[] | undefined;
    if (C === 2) {
      const pos = new Float64Array(m);
      const truth = new Uint8Array(m);
      for (let r = 0; r < m; r++) {
        pos[r] = out[r * 2 + 1]!;
        truth[r] = y[r] === 1 ? 1 : 0;
      }
      roc = rocCurve(pos, truth);
      deciles = scoreDeciles(pos, Float64Array.from(truth));
    }
    evaluation = { rows: m, roc_curve: roc, deciles, confusion_matrix: confusionMatrix(y, predicted, C) };
  }
  const last = t.history[t.history.length - 1];
  const artifact: SupervisedArtifact = {
    family: familyOf(t.candidate.modelType) === 'linear' ? 'linear' : 'trees',
    model_type: t.candidate.modelType,
    problem: target.problem,
    classes: target.classes,
    label: label.name,
    label_type: label.type,
    features: t.spec.features,
    dims: t.spec.dims,
    standardize: t.spec.standardize,
    linear: t.linear,
    ensemble: t.ensemble,
    importance: t.importance,
    explanation: t.explanation,
    evaluation,
  };
  return {
    hyperparameters: t.hyperparameters,
    metrics: { ...metrics, training_loss: last?.loss ?? null, eval_loss: last?.evalLoss ?? null },
    artifact,
  };
}

/** A seeded shuffle of row numbers (auto's holdout without an evaluation split). */
export function shuffle(rows: Uint32Array, seed: number): Uint32Array {
  const a = Uint32Array.from(rows);
  const rng = new Random(seed ^ 0x5bd1e995);
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

