import { loadTrainingData } from '../data/load.ts';
import { expectedPurchasesOf, fitPurchase, parameterNames, type FittedPurchase, type PurchaseModelKind } from '../models/clv/purchase.ts';
import { expectedSpend, fitGammaGamma, SPEND_PARAMETERS } from '../models/clv/gamma-gamma.ts';
import { clvSettings } from '../models/clv/options.ts';
import type { ClvArtifact } from '../models/clv/artifact.ts';
import { writeClvModel } from '../store/write-clv.ts';
import { UserError } from '../util/errors.ts';
import { pacer } from '../util/yield.ts';
import { storeContext, type JobContext } from './context.ts';
import type { ModelRow } from './training-data.ts';

// Customer lifetime value as a training job: the training function computes the RFM summary in
// PostgreSQL as the requester (one row per customer reaches the sidecar), BG/NBD (or MBG/NBD)
// and Gamma-Gamma are fitted, checked on the holdout when there is one, and written back with
// their SQL functions.

export async function trainClvJob(ctx: JobContext, model: ModelRow): Promise<void> {
  const s = clvSettings(model.options);
  // the training function returns the RFM summary (sql/api/clv.sql); the ids and dates stay there
  const data = await loadTrainingData({
    source: ctx.source,
    statementTimeoutMs: ctx.statementTimeoutMs,
    maxBytes: ctx.maxBytes,
    exclude: ['customer_id', 'first_purchase', 'last_purchase'],
    serverWorkMem: true,
    onRows: (rows) => ctx.report({ phase: 'load', customers: rows, customers_expected: ctx.source.estimatedRows }),
  });
  const n = data.table.rows;
  if (n === 0) throw new UserError('the transactions query returned no purchases (before "calibration_end", when given)');
  const col = (name: string): Float64Array => {
    const c = data.table.columns.find((x) => x.name === name);
    if (!c || c.kind !== 'numeric') throw new Error(`the RFM summary has no numeric column ${name}`);
    return c.values;
  };
  const x = col('frequency');
  const tx = col('recency');
  const T = col('age');
  const m = col('monetary_value');
  const started = performance.now();
  // auto: both purchase models; the better holdout error with a calibration split, else the
  // better likelihood (same number of parameters, so the better BIC)
  const kinds: PurchaseModelKind[] = s.purchaseModel === 'auto' ? ['bg_nbd', 'mbg_nbd', 'pareto_nbd'] : [s.purchaseModel];
  const hx = s.calibrationEnd ? col('holdout_frequency') : null;
  const duration = s.calibrationEnd ? col('holdout_duration')[0]! : 0;
  const candidates: { kind: PurchaseModelKind; fitted: FittedPurchase; fit: Awaited<ReturnType<typeof fitPurchase>>['fit']; expected: Float64Array | null; mae: number | null }[] = [];
  for (const kind of kinds) {
    await ctx.checkpoint({ phase: 'train', model: kind, customers: n });
    const { fitted, fit } = await fitPurchase(kind, { x, tx, T }, s.penalizer);
    const pause = () => ctx.checkpoint({ phase: 'evaluate', model: kind, customers: n });
    const expected = hx ? await expectedHoldout(duration, x, tx, T, fitted, pause) : null;
    candidates.push({ kind, fitted, fit, expected, mae: hx && expected ? meanAbsoluteError(expected, hx, duration) : null });
  }
  const better = (p: (typeof candidates)[number], q: (typeof candidates)[number]) => (p.mae !== null && q.mae !== null ? p.mae <= q.mae : p.fit.logLikelihood >= q.fit.logLikelihood);
  const chosen = candidates.reduce((best, c) => (better(best, c) ? best : c));
  const purchase = chosen.fit;
  const spend = s.spendModel === 'gamma_gamma' ? await fitSpend(ctx, x, m, s.penalizer) : null;
  const trainSeconds = (performance.now() - started) / 1000;
  await ctx.checkpoint({ phase: 'evaluate' });
  const holdout = hx && chosen.expected ? holdoutMetrics(chosen.expected, hx, col('holdout_monetary_value'), duration, x, m, spend?.model ?? null) : {};
  const k = 4; // every purchase model has four parameters
  const artifact = {
    purchase_model: chosen.fitted.kind,
    purchase: chosen.fitted.params,
    purchase_standard_errors: Object.fromEntries(parameterNames(chosen.kind).map((p, i) => [p, purchase.standardErrors[i]!])),
    spend_model: spend ? 'gamma_gamma' : 'none',
    spend: spend?.model ?? null,
    spend_standard_errors: spend ? Object.fromEntries(SPEND_PARAMETERS.map((p, i) => [p, spend.standardErrors[i]!])) : null,
    horizon: s.horizon,
    discount_rate: s.discountRate,
    time_unit: s.timeUnit,
    customer_col: s.customerCol,
    time_col: s.timeCol,
    value_col: s.valueCol,
  } as ClvArtifact;
  await ctx.checkpoint({ phase: 'write' });
  await writeClvModel(storeContext(ctx), {
    modelId: model.id,
    modelName: model.model_name,
    version: model.version,
    owner: model.owner,
    functionPrefix: typeof model.options.function_name === 'string' ? model.options.function_name : model.model_name,
    artifact,
    metrics: {
      customers: n,
      repeat_customers: x.reduce((c, v) => c + (v > 0 ? 1 : 0), 0),
      max_frequency: x.reduce((a, v) => Math.max(a, v), 0),
      max_age: T.reduce((a, v) => Math.max(a, v), 0),
      log_likelihood: purchase.logLikelihood,
      bic: k * Math.log(n) - 2 * purchase.logLikelihood,
      spend_log_likelihood: spend?.logLikelihood ?? null,
      purchase_model: chosen.kind,
      ...(candidates.length > 1
        ? { candidates: candidates.map((c) => ({ purchase_model: c.kind, log_likelihood: c.fit.logLikelihood, bic: k * Math.log(n) - 2 * c.fit.logLikelihood, mean_absolute_error: c.mae })) }
        : {}),
      ...holdout,
      load_seconds: data.seconds,
      train_seconds: trainSeconds,
    },
    options: model.options,
    trainingInfo: [
      { iteration: 0, loss: -purchase.logLikelihood / n, evalLoss: null, learnRate: null, durationMs: trainSeconds * 1000, clusterInfo: { model: chosen.kind, iterations: purchase.iterations, converged: purchase.converged } },
      ...(spend ? [{ iteration: 1, loss: -spend.logLikelihood / spend.customers, evalLoss: null, learnRate: null, durationMs: 0, clusterInfo: { model: 'gamma_gamma', iterations: spend.iterations, converged: spend.converged } }] : []),
    ],
    finalProgress: { phase: 'ready', customers: n },
  });
}

async function fitSpend(ctx: JobContext, x: Float64Array, m: Float64Array, penalizer: number) {
  const keep: number[] = [];
  for (let i = 0; i < x.length; i++) if (x[i]! > 0 && m[i]! > 0) keep.push(i);
  if (keep.length < 10) {
    throw new UserError(`only ${keep.length} customers have repeat purchases with a positive value: too few to fit the Gamma-Gamma spend model; set "spend_model": "none" or use a longer history`);
  }
  await ctx.checkpoint({ phase: 'train', model: 'gamma_gamma', customers: keep.length });
  const fit = await fitGammaGamma({ x: Float64Array.from(keep, (i) => x[i]!), m: Float64Array.from(keep, (i) => m[i]!) }, penalizer);
  if (fit.model.q <= 1) {
    throw new UserError(`the fitted Gamma-Gamma has q = ${fit.model.q.toFixed(3)} <= 1, for which the mean spend is not finite; raise "penalizer" or set "spend_model": "none"`);
  }
  return { ...fit, customers: keep.length };
}

/** Each customer's expected holdout purchases (the loop checks for cancellation: 2F1 per customer). */
async function expectedHoldout(duration: number, x: Float64Array, tx: Float64Array, T: Float64Array, purchase: FittedPurchase, pause: () => Promise<void>): Promise<Float64Array> {
  const e = new Float64Array(x.length);
  const pace = pacer(50, pause); // cancellation and the lease are honoured here too
  for (let i = 0; i < x.length; i++) {
    await pace();
    e[i] = expectedPurchasesOf(purchase, x[i]!, tx[i]!, T[i]!, duration);
  }
  return e;
}

/** Mean absolute error of expected against actual holdout purchases; a holdout so long that they did not converge: say so. */
function meanAbsoluteError(e: Float64Array, hx: Float64Array, duration: number): number {
  let abs = 0;
  for (let i = 0; i < e.length; i++) abs += Math.abs(e[i]! - hx[i]!);
  const v = abs / e.length;
  if (!Number.isFinite(v)) {
    throw new UserError(`the holdout (${duration.toFixed(1)} time units from "calibration_end" to "observation_end") is too long for the expected purchases to be computed; end the observation nearer the last transaction`);
  }
  return v;
}

/**
 * With a calibration split, from the chosen model's expected holdout purchases `e`: the mean
 * absolute error, totals, the calibration/holdout table by calibration frequency (0 … 7+), and
 * the spend error on the customers who bought in the holdout.
 */
function holdoutMetrics(
  e: Float64Array, hx: Float64Array, hm: Float64Array, duration: number,
  x: Float64Array, m: Float64Array, spend: Parameters<typeof expectedSpend>[0] | null,
): Record<string, unknown> {
  const n = x.length;
  let expected = 0;
  let actual = 0;
  let spendAbs = 0;
  let spendN = 0;
  const groups = Array.from({ length: 8 }, () => ({ customers: 0, actual: 0, expected: 0 }));
  for (let i = 0; i < n; i++) {
    expected += e[i]!;
    actual += hx[i]!;
    const g = groups[Math.min(7, x[i]!)]!;
    g.customers++;
    g.actual += hx[i]!;
    g.expected += e[i]!;
    if (spend && hx[i]! > 0) {
      spendAbs += Math.abs(expectedSpend(spend, x[i]!, m[i]!) - hm[i]!);
      spendN++;
    }
  }
  return {
    holdout_duration: duration,
    mean_absolute_error: meanAbsoluteError(e, hx, duration),
    expected_holdout_purchases: expected,
    actual_holdout_purchases: actual,
    spend_mean_absolute_error: spendN ? spendAbs / spendN : null,
    calibration_holdout: groups.map((g, f) => ({
      frequency: f === 7 ? '7+' : String(f),
      customers: g.customers,
      actual: g.customers ? g.actual / g.customers : null,
      expected: g.customers ? g.expected / g.customers : null,
    })),
  };
}
