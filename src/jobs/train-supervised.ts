import { randomInt } from 'node:crypto';
import type { LoadedData } from '../data/load.ts';
import { fitFeatures, transform, type FeatureSpec, type FeatureStats } from '../features/prepare.ts';
import { classificationMetrics, confusionMatrix, predictClasses, regressionMetrics, rocCurve, type RocPoint } from '../metrics/supervised.ts';
import { linearMargins, trainLinearRegression, trainLogisticRegression } from '../models/linear/train.ts';
import {
  ensembleParams,
  familyOf,
  linearParams,
  supervisedSettings,
  type Family,
  type SupervisedSettings,
  type SupervisedType,
} from '../models/supervised/options.ts';
import { splitRows } from '../models/supervised/split.ts';
import { outputs, type Problem, type Target } from '../models/supervised/target.ts';
import { MAX_COMPILED_NODES, treeNodeCount } from '../models/supervised/to-sql.ts';
import { binMatrix, type Binned } from '../models/trees/bins.ts';
import { splitImportance, trainEnsemble, type Ensemble } from '../models/trees/ensemble.ts';
import { ensembleBaseline, flatten } from '../models/trees/shap.ts';
import { dimFeatures, globalExplanation, linearExplanation, linearImportance } from '../models/supervised/explain.ts';
import { UserError, messageOf } from '../util/errors.ts';
import { Random } from '../util/random.ts';
import type { ModelRow } from './prepare.ts';
import { buildTarget, loadLabelled, splitColumn } from './load-labelled.ts';
import type { JobContext } from './context.ts';
import type { SupervisedArtifact } from '../models/supervised/artifact.ts';
import { writeSupervisedModel, type SupervisedTrial } from '../store/write-supervised.ts';
import { storeContext } from './context.ts';

// Training of linear_reg, logistic_reg, boosted_tree_*, random_forest_* and auto: load the
// labelled rows, split them (data_split_method), prepare the features per family, train each
// candidate (one for a plain model type, several for auto), evaluate on the evaluation split,
// choose, and write everything back in one transaction.

type Concrete = Exclude<SupervisedType, 'auto'>;

interface Candidate {
  modelType: Concrete;
  options: Record<string, unknown>; // the candidate's hyperparameters (the model's options for a plain type)
}

interface Trained {
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

const LOWER_IS_BETTER = new Set(['mean_absolute_error', 'mean_squared_error', 'mean_squared_log_error', 'median_absolute_error', 'log_loss']);

export async function trainSupervisedJob(ctx: JobContext, model: ModelRow): Promise<void> {
  const s = supervisedSettings(model.options);
  const modelType = model.model_type as SupervisedType;
  const seed = s.seed ?? randomInt(0, 2 ** 31 - 1);
  const deadline = s.maxRuntimeSeconds === null ? undefined : Date.now() + s.maxRuntimeSeconds * 1000;

  const data = await loadLabelled(ctx, s, modelType);
  const n = data.table.rows;
  await ctx.checkpoint({ phase: 'prepare', rows: n });
  const target = buildTarget(data, s, modelType);
  // The split depends on the data only (as BigQuery's), not on the seed: models of one query
  // are evaluated on the same rows.
  const splitCol = splitColumn(data);
  const split = splitRows(s.split, n, {
    evalFraction: s.evalFraction,
    seed: 0,
    columns: [...data.table.columns, data.extras.get('label')?.column ?? data.extras.get('label_text')!.column],
    splitValues: splitCol?.values,
    splitNulls: splitCol?.nulls,
    splitColumn: s.splitColumn,
  });

  // auto without an evaluation split holds out a share of the training rows to choose with,
  // then refits the chosen candidate on all of them.
  const candidates = modelType === 'auto' ? autoCandidates(target.problem) : [{ modelType, options: model.options }];
  let fitRows = split.train;
  let chooseRows = split.eval;
  if (modelType === 'auto' && !split.eval) {
    const shuffled = shuffle(split.train, seed);
    const hold = Math.max(1, Math.round(shuffled.length * 0.2));
    chooseRows = shuffled.subarray(0, hold).sort();
    fitRows = shuffled.subarray(hold).sort();
  }
  const prepared = new Map<string, { spec: FeatureSpec; stats: FeatureStats[]; X: Float64Array; binned?: Binned }>();
  let prepareSeconds = 0; // feature preparation and binning, the part of fitting before the rounds
  const prepare = (family: Family) => {
    const started = performance.now();
    const encoding = s.categoryEncoding ?? (family === 'linear' ? 'one_hot' : 'label');
    const key = `${family === 'linear' ? 'linear' : 'trees'}:${encoding}`;
    let p = prepared.get(key);
    if (!p) {
      const { spec, stats } = fitFeatures(data.table, { standardize: family === 'linear', maxCategories: s.maxCategories, categoryEncoding: encoding });
      p = { spec, stats, X: transform(data.table, spec) };
      prepared.set(key, p);
    }
    if (family !== 'linear' && !p.binned) p.binned = binMatrix(p.X, n, p.spec.dims, fitRows, seed);
    prepareSeconds += (performance.now() - started) / 1000;
    return p;
  };

  const trials: SupervisedTrial[] = [];
  const trained: (Trained | null)[] = [];
  const scoreRows = chooseRows ?? split.train;
  const objective = s.objective ?? (target.problem === 'regression' ? 'r2_score' : target.problem === 'binary' ? 'roc_auc' : 'accuracy');
  for (let c = 0; c < candidates.length; c++) {
    const cand = candidates[c]!;
    if (c > 0 && deadline !== undefined && Date.now() > deadline) {
      trials.push(failedTrial(c + 1, cand, `skipped: "max_runtime" (${s.maxRuntimeSeconds} s) was reached before this candidate`));
      trained.push(null);
      continue;
    }
    try {
      const t = await trainCandidate(ctx, cand, prepare(familyOf(cand.modelType)), target, fitRows, chooseRows, seed, deadline, `${c + 1}/${candidates.length}`);
      trained.push(t);
      trials.push(trialOf(c + 1, t, target, scoreRows, data, s));
    } catch (err) {
      if (candidates.length === 1 || !(err instanceof UserError)) throw err;
      trials.push(failedTrial(c + 1, cand, messageOf(err)));
      trained.push(null);
    }
  }
  const scored = trials.map((t, i) => ({ t, i })).filter((x) => x.t.error === undefined && typeof x.t.metrics[objective] === 'number');
  if (scored.length === 0) throw new UserError(`no candidate could be trained: ${trials.map((t) => `${t.hyperparameters.model_type}: ${t.error}`).join('; ')}`);
  const sign = LOWER_IS_BETTER.has(objective) ? -1 : 1;
  const best = scored.reduce((a, b) => (sign * (b.t.metrics[objective] as number) > sign * (a.t.metrics[objective] as number) ? b : a)).i;

  if (modelType === 'auto' && !split.eval) {
    // Refit the chosen candidate on every training row; its metrics are then on those rows.
    const cand = candidates[best]!;
    const t = await trainCandidate(ctx, cand, prepare(familyOf(cand.modelType)), target, split.train, null, seed, deadline, 'refit');
    trained[best] = t;
    const refit = trialOf(best + 1, t, target, split.train, data, s);
    trials[best] = { ...refit, metrics: { ...refit.metrics, selection: trials[best]!.metrics } };
  }
  trials[best]!.isOptimal = true;
  const served = trained[best]!;
  const servedTrial = trials[best]!;
  await ctx.checkpoint({ phase: 'explain', model_type: served.candidate.modelType });
  const { X: servedX } = prepare(familyOf(served.candidate.modelType));
  servedTrial.artifact!.explanation = {
    ...servedTrial.artifact!.explanation!,
    global: globalExplanation(served, servedX, target, split.eval ?? split.train),
  };
  const { stats } = prepare(familyOf(served.candidate.modelType));
  await ctx.checkpoint({ phase: 'write', model_type: served.candidate.modelType });
  await writeSupervisedModel(storeContext(ctx), {
    modelId: model.id,
    modelName: model.model_name,
    version: model.version,
    owner: model.owner,
    functionName: model.function_name,
    trials,
    metrics: {
      ...servedTrial.metrics,
      model_type: served.candidate.modelType,
      rows: n,
      training_rows: split.train.length,
      evaluation_rows: split.eval?.length ?? 0,
      data_split_method: split.method,
      train_seconds: served.seconds,
      prepare_seconds: prepareSeconds,
      load_seconds: data.seconds,
    },
    options: { ...model.options, seed, input_label_cols: [s.label], objective, data_split_method: s.split },
    trainingInfo: served.history,
    featureStats: stats,
    finalProgress: { phase: 'ready', model_type: served.candidate.modelType, [objective]: servedTrial.metrics[objective] },
  });
}

function autoCandidates(problem: Problem): Candidate[] {
  const c = problem !== 'regression';
  return [
    { modelType: c ? 'logistic_reg' : 'linear_reg', options: {} },
    { modelType: c ? 'boosted_tree_classifier' : 'boosted_tree_regressor', options: {} },
    // Shallower trees, more rounds: often better on small or noisy data.
    { modelType: c ? 'boosted_tree_classifier' : 'boosted_tree_regressor', options: { max_tree_depth: 3, max_iterations: 300, min_tree_child_weight: 5 } },
    { modelType: c ? 'random_forest_classifier' : 'random_forest_regressor', options: { num_parallel_tree: 50 } },
  ];
}

async function trainCandidate(
  ctx: JobContext,
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
    await ctx.checkpoint({ phase: 'train', candidate: label, model_type: cand.modelType });
    const m = target.problem === 'regression' ? trainLinearRegression(p.X, d, target, fitRows, lp) : trainLogisticRegression(p.X, d, target, fitRows, lp);
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
    ctx.checkpoint({ phase: 'train', candidate: label, model_type: cand.modelType, iteration: info.iteration, loss: info.loss, eval_loss: info.evalLoss }),
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

function trialOf(
  trialId: number,
  t: Trained,
  target: Target,
  rows: Uint32Array,
  data: LoadedData,
  s: SupervisedSettings,
): SupervisedTrial {
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
    evaluation = { rows: m };
  } else {
    metrics = { ...classificationMetrics(y, out, C) };
    const predicted = predictClasses(out, m, C);
    let roc: RocPoint[] | undefined;
    if (C === 2) {
      const pos = new Float64Array(m);
      const truth = new Uint8Array(m);
      for (let r = 0; r < m; r++) {
        pos[r] = out[r * 2 + 1]!;
        truth[r] = y[r] === 1 ? 1 : 0;
      }
      roc = rocCurve(pos, truth);
    }
    evaluation = { rows: m, roc_curve: roc, confusion_matrix: confusionMatrix(y, predicted, C) };
  }
  const last = t.history[t.history.length - 1];
  const artifact: SupervisedArtifact = {
    family: familyOf(t.candidate.modelType) === 'linear' ? 'linear' : 'trees',
    model_type: t.candidate.modelType,
    problem: target.problem,
    classes: target.classes,
    label: s.label,
    // A user's type (an enum, say) in a generated function would run its owner's casts as whoever scores.
    label_type: data.extras.get('label')!.type.builtin ? data.extras.get('label')!.type.type : 'text',
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
    trialId,
    hyperparameters: t.hyperparameters,
    metrics: { ...metrics, training_loss: last?.loss ?? null, eval_loss: last?.evalLoss ?? null },
    artifact,
    isOptimal: false,
  };
}

function failedTrial(trialId: number, cand: Candidate, error: string): SupervisedTrial {
  return { trialId, hyperparameters: { model_type: cand.modelType, ...cand.options }, metrics: {}, error, isOptimal: false };
}

function shuffle(rows: Uint32Array, seed: number): Uint32Array {
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
