// The label side of a supervised model: the problem type, the classes, and the loss that
// every family (linear and tree) minimises, with its per-row gradient and hessian in margin
// space. Margins: one per row for regression and binary classification (the logit of the
// higher label), one per class for multiclass (softmax).

export type Problem = 'regression' | 'binary' | 'multiclass';

export interface Target {
  problem: Problem;
  /** Regression: the label. Classification: the class index (0..K-1). */
  y: Float64Array;
  /** Per-row weight (class weights), 1 by default. */
  w: Float64Array;
  /** Classes in order (sorted as the label type sorts); the positive class of a binary model is the last. */
  classes: string[] | null;
  /** Margins per row: 1, or K for multiclass. */
  K: number;
}

export function marginsPerRow(problem: Problem, classes: number): number {
  return problem === 'multiclass' ? classes : 1;
}

/** The constant margins that minimise the loss: mean, logit of the positive share, log priors. */
export function baseMargins(t: Target, rows: Uint32Array): number[] {
  if (t.problem === 'regression') {
    let sw = 0;
    let s = 0;
    for (const i of rows) {
      sw += t.w[i]!;
      s += t.w[i]! * t.y[i]!;
    }
    return [sw > 0 ? s / sw : 0];
  }
  const K = t.classes!.length;
  const counts = new Float64Array(K);
  let sw = 0;
  for (const i of rows) {
    counts[t.y[i]!] += t.w[i]!;
    sw += t.w[i]!;
  }
  const clip = (p: number) => Math.min(1 - 1e-12, Math.max(1e-12, p));
  if (t.problem === 'binary') {
    const p = clip(counts[1]! / sw);
    return [Math.log(p / (1 - p))];
  }
  return Array.from(counts, (c) => Math.log(clip(c / sw)));
}

/**
 * Gradient and hessian of the loss at margins F (n x K, row-major) for the given rows, written
 * side by side into gh (n x K pairs: gh[2 (i K + k)] = g, gh[2 (i K + k) + 1] = h, the layout
 * a tree's histogram pass reads), and the weighted mean loss over those rows.
 */
export function gradients(t: Target, F: Float64Array, rows: Uint32Array, gh: Float64Array): number {
  const K = t.K;
  let loss = 0;
  let sw = 0;
  if (t.problem === 'regression') {
    for (const i of rows) {
      const r = F[i]! - t.y[i]!;
      const w = t.w[i]!;
      gh[2 * i] = w * r;
      gh[2 * i + 1] = w;
      loss += w * r * r;
      sw += w;
    }
  } else if (t.problem === 'binary') {
    for (let r = 0; r < rows.length; r++) {
      const i = rows[r]!;
      const m = F[i]!;
      // One exp and one log1p per row: e = exp(-|m|), p = sigmoid(m), loss = log(1 + e^m) - y m.
      const e = Math.exp(-Math.abs(m));
      const p = m >= 0 ? 1 / (1 + e) : e / (1 + e);
      const y = t.y[i]!;
      const w = t.w[i]!;
      gh[2 * i] = w * (p - y);
      gh[2 * i + 1] = w * Math.max(p * (1 - p), 1e-16);
      loss += w * (Math.log1p(e) + (m > 0 ? m : 0) - y * m);
      sw += w;
    }
  } else {
    const p = new Float64Array(K);
    for (const i of rows) {
      softmaxInto(F, i * K, K, p);
      const y = t.y[i]!;
      const w = t.w[i]!;
      for (let k = 0; k < K; k++) {
        gh[2 * (i * K + k)] = w * (p[k]! - (k === y ? 1 : 0));
        gh[2 * (i * K + k) + 1] = w * Math.max(p[k]! * (1 - p[k]!), 1e-16);
      }
      loss -= w * Math.log(Math.max(p[y]!, 1e-15));
      sw += w;
    }
  }
  return sw > 0 ? loss / sw : 0;
}

/**
 * Binary gradients (into gh, unless null) and mean loss from E = exp(-F), kept beside the
 * margins by the boosting loop (a leaf that adds v to its rows' margins multiplies their E by
 * exp(-v): one exp per leaf, not one exp and one log per row; 1.0 -> 0.3 ms a round on 32,000
 * rows). p = 1 / (1 + E),
 * loss = log(1 + E) + (1 - y) m; the logs of unit-weight rows are taken of running products
 * (each factor is in (1, 1e100), flushed before 1e200). Rows whose E has grown past 1e100
 * (margins below -230) take the exact path.
 */
export function binaryGradientsFromExp(t: Target, F: Float64Array, E: Float64Array, rows: Uint32Array, gh: Float64Array | null): number {
  const { y, w } = t;
  let logs = 0;
  let prod = 1;
  let lin = 0;
  let sw = 0;
  for (let r = 0; r < rows.length; r++) {
    const i = rows[r]!;
    const m = F[i]!;
    const e = E[i]!;
    const wi = w[i]!;
    const yi = y[i]!;
    sw += wi;
    if (!(e < 1e100)) {
      if (gh) {
        gh[2 * i] = wi * (sigmoid(m) - yi);
        gh[2 * i + 1] = wi * 1e-16;
      }
      logs += wi * logLoss1(m, yi);
      continue;
    }
    const d = 1 + e;
    if (gh) {
      const p = 1 / d;
      gh[2 * i] = wi * (p - yi);
      gh[2 * i + 1] = wi * Math.max(e * p * p, 1e-16); // p (1 - p), with 1 - p = e p
    }
    lin += wi * (1 - yi) * m;
    if (wi === 1) {
      prod *= d;
      if (prod > 1e200) {
        logs += Math.log(prod);
        prod = 1;
      }
    } else logs += wi * Math.log(d);
  }
  return sw > 0 ? (logs + Math.log(prod) + lin) / sw : 0;
}

/** The binary mean loss from E = exp(-F) (early stopping on the evaluation rows). */
export function binaryLossFromExp(t: Target, F: Float64Array, E: Float64Array, rows: Uint32Array): number {
  return binaryGradientsFromExp(t, F, E, rows, null);
}

/** The weighted mean loss only (early stopping on the evaluation rows). */
export function meanLoss(t: Target, F: Float64Array, rows: Uint32Array): number {
  const K = t.K;
  let loss = 0;
  let sw = 0;
  const p = new Float64Array(K);
  for (const i of rows) {
    const w = t.w[i]!;
    sw += w;
    if (t.problem === 'regression') loss += w * (F[i]! - t.y[i]!) ** 2;
    else if (t.problem === 'binary') loss += w * logLoss1(F[i]!, t.y[i]!);
    else {
      softmaxInto(F, i * K, K, p);
      loss -= w * Math.log(Math.max(p[t.y[i]!]!, 1e-15));
    }
  }
  return sw > 0 ? loss / sw : 0;
}

export function sigmoid(m: number): number {
  return m >= 0 ? 1 / (1 + Math.exp(-m)) : Math.exp(m) / (1 + Math.exp(m));
}

/** -log p(y) for a binary margin, computed stably. */
function logLoss1(m: number, y: number): number {
  // log(1 + e^m) - y m
  const softplus = m > 0 ? m + Math.log1p(Math.exp(-m)) : Math.log1p(Math.exp(m));
  return softplus - y * m;
}

export function softmaxInto(F: Float64Array, at: number, K: number, out: Float64Array): void {
  let max = -Infinity;
  for (let k = 0; k < K; k++) if (F[at + k]! > max) max = F[at + k]!;
  let s = 0;
  for (let k = 0; k < K; k++) {
    out[k] = Math.exp(F[at + k]! - max);
    s += out[k]!;
  }
  for (let k = 0; k < K; k++) out[k] = out[k]! / s;
}

/**
 * What a model outputs per row, from its margins: the prediction for regression, else the
 * probability of each class (n x C, C = number of classes).
 */
export function outputs(problem: Problem, F: Float64Array, n: number, classes: number): Float64Array {
  if (problem === 'regression') return F;
  const out = new Float64Array(n * classes);
  if (problem === 'binary') {
    for (let i = 0; i < n; i++) {
      const p = sigmoid(F[i]!);
      out[2 * i] = 1 - p;
      out[2 * i + 1] = p;
    }
    return out;
  }
  const p = new Float64Array(classes);
  for (let i = 0; i < n; i++) {
    softmaxInto(F, i * classes, classes, p);
    out.set(p, i * classes);
  }
  return out;
}
