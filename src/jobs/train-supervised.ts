import { randomInt } from 'node:crypto';
import { fitFeatures, transform, type FeatureSpec, type FeatureStats } from '../features/prepare.ts';
import { globalExplanation } from '../models/supervised/explain.ts';
import {
  LOWER_IS_BETTER,
  autoCandidates,
  evaluateCandidate,
  shuffle,
  trainCandidate,
  type Candidate,
  type Trained,
} from '../models/supervised/fit.ts';
import { familyOf, supervisedSettings, type Family, type SupervisedType } from '../models/supervised/options.ts';
import { splitRows } from '../models/supervised/split.ts';
import { binMatrix, type Binned } from '../models/trees/bins.ts';
import { writeSupervisedModel, type SupervisedTrial } from '../store/write-supervised.ts';
import { UserError, messageOf } from '../util/errors.ts';
import { storeContext, type JobContext } from './context.ts';
import { buildTarget, loadLabelled, splitColumn } from './load-labelled.ts';
import type { ModelRow } from './training-data.ts';
import { yieldToEventLoop } from '../util/yield.ts';

// Training of linear_reg, logistic_reg, boosted_tree_*, random_forest_* and auto: load the
// labelled rows, split them (data_split_method), prepare the features per family, train each
// candidate (one for a plain model type, several for auto), evaluate on the evaluation split,
// choose, and write everything back in one transaction.

export async function trainSupervisedJob(ctx: JobContext, model: ModelRow): Promise<void> {
  const s = supervisedSettings(model.options);
  const modelType = model.model_type as SupervisedType;
  const seed = s.seed ?? randomInt(0, 2 ** 31 - 1);
  const deadline = s.maxRuntimeSeconds === null ? undefined : Date.now() + s.maxRuntimeSeconds * 1000;

  const data = await loadLabelled(ctx, s, modelType);
  const n = data.table.rows;
  await ctx.checkpoint({ phase: 'prepare', rows: n });
  const target = buildTarget(data, s, modelType);
  // A user's type (an enum, say) in a generated function would run its owner's casts as whoever scores.
  const labelType = data.extras.get('label')!.type;
  const label = { name: s.label, type: labelType.builtin ? labelType.type : 'text' };
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
  const timed = <T>(step: () => T): T => {
    const started = performance.now();
    try {
      return step();
    } finally {
      prepareSeconds += (performance.now() - started) / 1000;
    }
  };
  // Each step runs in one go; between steps the event loop runs (heartbeats, cancellation).
  const prepare = async (family: Family) => {
    const encoding = s.categoryEncoding ?? (family === 'linear' ? 'one_hot' : 'label');
    const key = `${family === 'linear' ? 'linear' : 'trees'}:${encoding}`;
    let p = prepared.get(key);
    if (!p) {
      await yieldToEventLoop();
      const { spec, stats } = timed(() => fitFeatures(data.table, { standardize: family === 'linear', ...s.categories, categoryEncoding: encoding }));
      await yieldToEventLoop();
      p = { spec, stats, X: timed(() => transform(data.table, spec)) };
      prepared.set(key, p);
    }
    if (family !== 'linear' && !p.binned) {
      await yieldToEventLoop();
      const q = p;
      p.binned = timed(() => binMatrix(q.X, n, q.spec.dims, fitRows, seed));
    }
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
      const t = await trainCandidate(ctx.checkpoint, cand, await prepare(familyOf(cand.modelType)), target, fitRows, chooseRows, seed, deadline, `${c + 1}/${candidates.length}`);
      trained.push(t);
      await yieldToEventLoop();
      trials.push({ trialId: c + 1, ...evaluateCandidate(t, target, scoreRows, label), isOptimal: false });
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
    const t = await trainCandidate(ctx.checkpoint, cand, await prepare(familyOf(cand.modelType)), target, split.train, null, seed, deadline, 'refit');
    trained[best] = t;
    const refit = { trialId: best + 1, ...evaluateCandidate(t, target, split.train, label), isOptimal: false };
    trials[best] = { ...refit, metrics: { ...refit.metrics, selection: trials[best]!.metrics } };
  }
  trials[best]!.isOptimal = true;
  const served = trained[best]!;
  const servedTrial = trials[best]!;
  await ctx.checkpoint({ phase: 'explain', model_type: served.candidate.modelType });
  const { X: servedX } = await prepare(familyOf(served.candidate.modelType));
  servedTrial.artifact!.explanation = {
    ...servedTrial.artifact!.explanation!,
    global: await globalExplanation(served, servedX, target, split.eval ?? split.train),
  };
  const { stats } = await prepare(familyOf(served.candidate.modelType));
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

function failedTrial(trialId: number, cand: Candidate, error: string): SupervisedTrial {
  return { trialId, hyperparameters: { model_type: cand.modelType, ...cand.options }, metrics: {}, error, isOptimal: false };
}
