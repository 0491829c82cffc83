import { select } from '../util/select.ts';

// BigQuery ML's ML.EVALUATE metrics for regression and classification, ML.ROC_CURVE and the
// confusion matrix, computed on the evaluation rows. Multiclass precision, recall, F1 and ROC
// AUC are macro averages (one class against the rest); accuracy is the share of rows right.

export interface RegressionMetrics {
  mean_absolute_error: number;
  mean_squared_error: number;
  mean_squared_log_error: number | null; // null when a label or prediction is below 0
  median_absolute_error: number;
  r2_score: number;
  explained_variance: number;
}

export function regressionMetrics(y: Float64Array, yhat: Float64Array): RegressionMetrics {
  const n = y.length;
  let ae = 0;
  let se = 0;
  let sle = 0;
  let logOk = true;
  let my = 0;
  let mr = 0;
  const abs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = y[i]! - yhat[i]!;
    abs[i] = Math.abs(r);
    ae += abs[i]!;
    se += r * r;
    my += y[i]!;
    mr += r;
    if (y[i]! < 0 || yhat[i]! < 0) logOk = false;
    else sle += (Math.log1p(y[i]!) - Math.log1p(yhat[i]!)) ** 2;
  }
  my /= n;
  mr /= n;
  let tot = 0;
  let vr = 0;
  for (let i = 0; i < n; i++) {
    tot += (y[i]! - my) ** 2;
    vr += (y[i]! - yhat[i]! - mr) ** 2;
  }
  const median = n % 2 ? select(abs, (n - 1) / 2) : (select(abs, n / 2 - 1) + select(abs, n / 2)) / 2;
  return {
    mean_absolute_error: ae / n,
    mean_squared_error: se / n,
    mean_squared_log_error: logOk ? sle / n : null,
    median_absolute_error: median,
    r2_score: tot > 0 ? 1 - se / tot : 0,
    explained_variance: tot > 0 ? 1 - vr / tot : 0,
  };
}

export interface ClassificationMetrics {
  precision: number;
  recall: number;
  accuracy: number;
  f1_score: number;
  log_loss: number;
  roc_auc: number;
}

/**
 * y: class index per row; P: probabilities (n x C). Binary (C = 2): the positive class is the
 * last, predicted when its probability >= threshold. Multiclass: the most probable class.
 */
export function classificationMetrics(y: Float64Array, P: Float64Array, C: number, threshold = 0.5): ClassificationMetrics {
  const n = y.length;
  const predicted = predictClasses(P, n, C, threshold);
  let right = 0;
  let ll = 0;
  for (let i = 0; i < n; i++) {
    if (predicted[i] === y[i]) right++;
    ll -= Math.log(Math.min(1 - 1e-15, Math.max(1e-15, P[i * C + y[i]!]!)));
  }
  const perClass = (k: number) => {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < n; i++) {
      const isK = y[i] === k;
      const saysK = predicted[i] === k;
      if (isK && saysK) tp++;
      else if (saysK) fp++;
      else if (isK) fn++;
    }
    const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
    const recall = tp + fn > 0 ? tp / (tp + fn) : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    const score = new Float64Array(n);
    const truth = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      score[i] = P[i * C + k]!;
      truth[i] = isOf(y[i]!, k);
    }
    return { precision, recall, f1, auc: rocAuc(score, truth) };
  };
  const classes = C === 2 ? [1] : Array.from({ length: C }, (_, k) => k);
  const parts = classes.map(perClass);
  const mean = (f: (p: (typeof parts)[number]) => number) => parts.reduce((s, p) => s + f(p), 0) / parts.length;
  return {
    precision: mean((p) => p.precision),
    recall: mean((p) => p.recall),
    accuracy: right / n,
    f1_score: mean((p) => p.f1),
    log_loss: ll / n,
    roc_auc: mean((p) => p.auc),
  };
}

function isOf(y: number, k: number): number {
  return y === k ? 1 : 0;
}

export function predictClasses(P: Float64Array, n: number, C: number, threshold = 0.5): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (C === 2) out[i] = P[i * 2 + 1]! >= threshold ? 1 : 0;
    else {
      let best = 0;
      for (let k = 1; k < C; k++) if (P[i * C + k]! > P[i * C + best]!) best = k;
      out[i] = best;
    }
  }
  return out;
}

/** Area under the ROC curve: the probability that a random positive outscores a random negative (ties count half). */
export function rocAuc(score: Float64Array, truth: Uint8Array): number {
  const n = score.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => score[a]! - score[b]!);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && score[order[j + 1]!] === score[order[i]!]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let r = i; r <= j; r++) if (truth[order[r]!]) {
      pos++;
      rankSum += avgRank;
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return 0.5;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

export interface RocPoint {
  threshold: number;
  recall: number;
  false_positive_rate: number;
  true_positives: number;
  false_positives: number;
  true_negatives: number;
  false_negatives: number;
}

/** ML.ROC_CURVE: at thresholds = the percentiles 0..100 of the positive-class probability (distinct). */
export function rocCurve(positive: Float64Array, truth: Uint8Array): RocPoint[] {
  const sorted = Float64Array.from(positive).sort();
  const n = sorted.length;
  const thresholds = [...new Set(Array.from({ length: 101 }, (_, p) => sorted[Math.min(n - 1, Math.floor((p / 100) * (n - 1)))]!))].sort((a, b) => b - a);
  let P = 0;
  for (const t of truth) P += t;
  const N = n - P;
  return thresholds.map((threshold) => {
    let tp = 0;
    let fp = 0;
    for (let i = 0; i < n; i++) {
      if (positive[i]! >= threshold) {
        if (truth[i]) tp++;
        else fp++;
      }
    }
    return {
      threshold,
      recall: P ? tp / P : 0,
      false_positive_rate: N ? fp / N : 0,
      true_positives: tp,
      false_positives: fp,
      true_negatives: N - fp,
      false_negatives: P - tp,
    };
  });
}

/** Counts per (expected, predicted) class pair, rows in class order. */
export function confusionMatrix(y: Float64Array, predicted: Int32Array, C: number): number[][] {
  const m = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  for (let i = 0; i < y.length; i++) m[y[i]!]![predicted[i]!]! += 1;
  return m;
}

/** One tenth of the rows by score, highest scores first (SQL's ntile(10) over score DESC). */
export interface ScoreDecile {
  decile: number;
  rows: number;
  min_score: number;
  max_score: number;
  mean_score: number;
  mean_actual: number; // the positive rate (binary) or the mean label (regression)
}

/** The lift, gain and calibration charts' data: rows split into ten groups by descending score. */
export function scoreDeciles(score: Float64Array, actual: Float64Array): ScoreDecile[] {
  const n = score.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => score[b]! - score[a]! || a - b);
  const groups = Math.min(10, n);
  const out: ScoreDecile[] = [];
  let at = 0;
  for (let g = 0; g < groups; g++) {
    const size = Math.floor(n / groups) + (g < n % groups ? 1 : 0);
    let s = 0, a = 0, lo = Infinity, hi = -Infinity;
    for (let r = at; r < at + size; r++) {
      const i = order[r]!;
      s += score[i]!;
      a += actual[i]!;
      lo = Math.min(lo, score[i]!);
      hi = Math.max(hi, score[i]!);
    }
    out.push({ decile: g + 1, rows: size, min_score: lo, max_score: hi, mean_score: s / size, mean_actual: a / size });
    at += size;
  }
  return out;
}
