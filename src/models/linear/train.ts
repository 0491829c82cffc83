import { Matrix, solve } from 'ml-matrix';
import { softmaxInto, type Target } from '../supervised/target.ts';
import { minimize } from './lbfgs.ts';

// linear_reg and logistic_reg on the model-space matrix (numeric features standardized,
// categories one-hot), with an intercept. Objective: the weighted *sum* of the per-row losses
// (squared error, or log loss) + l2_reg/2 * |w|^2 + l1_reg * |w|_1; intercepts are not
// penalised.
//   linear_reg without l1: the normal equation, solved exactly (ml-matrix).
//   linear_reg with l1: coordinate descent on the same Gram matrix.
//   logistic_reg: L-BFGS (OWL-QN with l1), binary on the logit of the higher label,
//   multiclass as a softmax with one weight vector per class.

export interface LinearModel {
  /** One row per margin: weights over the model-space dimensions. */
  weights: number[][];
  intercepts: number[];
  iterations: number;
  converged: boolean;
  loss: number[]; // objective per iteration (logistic) or the final one
}

export interface LinearParams {
  l1: number;
  l2: number;
  maxIterations: number;
  fitIntercept: boolean;
}

// Keeps one-hot blocks with an intercept (and separable classes) solvable without changing
// the fit measurably.
const RIDGE_FLOOR = 1e-6;

export function trainLinearRegression(X: Float64Array, d: number, t: Target, rows: Uint32Array, p: LinearParams): LinearModel {
  const D = d + 1; // the intercept is the last coordinate
  const A = new Float64Array(D * D);
  const b = new Float64Array(D);
  const xr = new Float64Array(D);
  xr[d] = p.fitIntercept ? 1 : 0;
  for (const i of rows) {
    const w = t.w[i]!;
    const y = t.y[i]!;
    for (let j = 0; j < d; j++) xr[j] = X[i * d + j]!;
    for (let j = 0; j < D; j++) {
      const wx = w * xr[j]!;
      if (wx === 0) continue;
      b[j] += wx * y;
      for (let k = j; k < D; k++) A[j * D + k] += wx * xr[k]!;
    }
  }
  for (let j = 0; j < D; j++) for (let k = 0; k < j; k++) A[j * D + k] = A[k * D + j]!;
  for (let j = 0; j < d; j++) A[j * D + j] += p.l1 > 0 ? Math.max(p.l2, RIDGE_FLOOR) : p.l2;
  if (!p.fitIntercept) A[d * D + d] = 1; // beta_intercept = 0
  let beta: Float64Array;
  let iterations = 1;
  if (p.l1 === 0) {
    // Without l2 the system is singular whenever one-hot blocks sit next to the intercept:
    // SVD gives the minimum-norm solution (the fitted values are the same for every solution).
    const sol = solve(new Matrix(Array.from({ length: D }, (_, j) => Array.from(A.subarray(j * D, j * D + D)))), Matrix.columnVector(Array.from(b)), p.l2 === 0);
    beta = Float64Array.from(sol.getColumn(0));
  } else {
    beta = new Float64Array(D);
    for (iterations = 1; iterations <= Math.max(p.maxIterations, 1000); iterations++) {
      let change = 0;
      for (let j = 0; j < D; j++) {
        let r = b[j]!;
        for (let k = 0; k < D; k++) if (k !== j) r -= A[j * D + k]! * beta[k]!;
        const l1 = j === d ? 0 : p.l1;
        const next = (r > l1 ? r - l1 : r < -l1 ? r + l1 : 0) / A[j * D + j]!;
        change = Math.max(change, Math.abs(next - beta[j]!));
        beta[j] = next;
      }
      if (change < 1e-10) break;
    }
  }
  let sse = 0;
  let sw = 0;
  for (const i of rows) {
    let yhat = beta[d]!;
    for (let j = 0; j < d; j++) yhat += beta[j]! * X[i * d + j]!;
    sse += t.w[i]! * (t.y[i]! - yhat) ** 2;
    sw += t.w[i]!;
  }
  return { weights: [Array.from(beta.subarray(0, d))], intercepts: [beta[d]!], iterations, converged: true, loss: [sse / sw] };
}

export function trainLogisticRegression(X: Float64Array, d: number, t: Target, rows: Uint32Array, p: LinearParams): LinearModel {
  const K = t.K; // 1 (binary) or the number of classes
  const D = d + 1;
  const l2 = Math.max(p.l2, RIDGE_FLOOR);
  const mask = new Uint8Array(K * D);
  for (let k = 0; k < K; k++) for (let j = 0; j < d; j++) mask[k * D + j] = 1;
  const margins = new Float64Array(K);
  const prob = new Float64Array(K);
  const history: number[] = [];
  const fg = (beta: Float64Array, grad: Float64Array): number => {
    grad.fill(0);
    let f = 0;
    for (const i of rows) {
      const w = t.w[i]!;
      const at = i * d;
      for (let k = 0; k < K; k++) {
        let m = p.fitIntercept ? beta[k * D + d]! : 0;
        for (let j = 0; j < d; j++) m += beta[k * D + j]! * X[at + j]!;
        margins[k] = m;
      }
      const y = t.y[i]!;
      if (K === 1) {
        const m = margins[0]!;
        const softplus = m > 0 ? m + Math.log1p(Math.exp(-m)) : Math.log1p(Math.exp(m));
        f += w * (softplus - y * m);
        prob[0] = m >= 0 ? 1 / (1 + Math.exp(-m)) : Math.exp(m) / (1 + Math.exp(m));
        prob[0] = w * (prob[0]! - y);
      } else {
        softmaxInto(margins, 0, K, prob);
        f -= w * Math.log(Math.max(prob[y]!, 1e-300));
        for (let k = 0; k < K; k++) prob[k] = w * (prob[k]! - (k === y ? 1 : 0));
      }
      for (let k = 0; k < K; k++) {
        const r = prob[k]!;
        if (r === 0) continue;
        const base = k * D;
        for (let j = 0; j < d; j++) grad[base + j] += r * X[at + j]!;
        if (p.fitIntercept) grad[base + d] += r;
      }
    }
    for (let k = 0; k < K; k++) {
      for (let j = 0; j < d; j++) {
        const v = beta[k * D + j]!;
        f += 0.5 * l2 * v * v;
        grad[k * D + j] += l2 * v;
      }
    }
    history.push(f);
    return f;
  };
  const res = minimize(fg, new Float64Array(K * D), { maxIterations: p.maxIterations, l1: p.l1, l1Mask: mask, tolerance: 1e-10 });
  const weights: number[][] = [];
  const intercepts: number[] = [];
  for (let k = 0; k < K; k++) {
    weights.push(Array.from(res.x.subarray(k * D, k * D + d)));
    intercepts.push(p.fitIntercept ? res.x[k * D + d]! : 0);
  }
  let sw = 0;
  for (const i of rows) sw += t.w[i]!;
  return { weights, intercepts, iterations: res.iterations, converged: res.converged, loss: history.map((v) => v / sw) };
}

/** Margins of model-space rows (row-major n x d). */
export function linearMargins(m: Pick<LinearModel, 'weights' | 'intercepts'>, X: Float64Array, n: number, d: number): Float64Array {
  const K = m.weights.length;
  const F = new Float64Array(n * K);
  for (let k = 0; k < K; k++) {
    const w = m.weights[k]!;
    for (let i = 0; i < n; i++) {
      let s = m.intercepts[k]!;
      for (let j = 0; j < d; j++) s += w[j]! * X[i * d + j]!;
      F[i * K + k] = s;
    }
  }
  return F;
}
