import { minimize } from '../linear/lbfgs.ts';
import { hyp2f1, lgamma, logAddExp } from './special.ts';

// The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while
// active, a customer buys at Poisson rate λ ~ Gamma(r, α); after each repeat purchase they drop
// out with probability p ~ Beta(a, b). Fitted by maximum likelihood on (x, t_x, T) per customer
// = (frequency, recency, age) of ml_rfm.

export interface BgNbd {
  r: number;
  alpha: number;
  a: number;
  b: number;
}

export interface RfmData {
  x: Float64Array; // frequency (repeat purchases)
  tx: Float64Array; // recency
  T: Float64Array; // age
}

export const PARAMETERS = ['r', 'alpha', 'a', 'b'] as const;

const params = (theta: Float64Array): BgNbd => ({ r: Math.exp(theta[0]!), alpha: Math.exp(theta[1]!), a: Math.exp(theta[2]!), b: Math.exp(theta[3]!) });

/**
 * Sum of the customers' log-likelihoods (equation 6 of the paper, in logs):
 * ln[Γ(r+x) α^r / Γ(r)] + ln[B(a, b+x) / B(a, b)] - (r+x) ln(α+T)
 *   + ln[1 + δ(x>0) a/(b+x-1) ((α+T)/(α+t_x))^(r+x)].
 * The terms that depend on x alone are computed once per distinct x.
 */
export function logLikelihood(m: BgNbd, d: RfmData): number {
  const { r, alpha, a, b } = m;
  const perX = new Map<number, number>();
  const base = r * Math.log(alpha) - lgamma(r) + lgamma(a + b) - lgamma(b);
  let ll = 0;
  for (let i = 0; i < d.x.length; i++) {
    const x = d.x[i]!;
    let gx = perX.get(x);
    if (gx === undefined) {
      gx = lgamma(r + x) + lgamma(b + x) - lgamma(a + b + x);
      perX.set(x, gx);
    }
    const A = -(r + x) * Math.log(alpha + d.T[i]!);
    const B = x > 0 ? Math.log(a) - Math.log(b + x - 1) - (r + x) * Math.log(alpha + d.tx[i]!) : -Infinity;
    ll += base + gx + logAddExp(A, B);
  }
  return ll;
}

export interface Fit<M> {
  model: M;
  logLikelihood: number;
  iterations: number;
  converged: boolean;
  /** Standard errors of the parameters, from the inverse Hessian of the log-likelihood (delta method). */
  standardErrors: number[];
}

/**
 * Maximum likelihood on the log-parameters: L-BFGS on the mean negative log-likelihood plus
 * `penalizer` × the sum of squared log-parameters (an L2 pull towards 1, as lifetimes' penalizer;
 * 0 = plain maximum likelihood). Gradients by central differences (four parameters).
 */
export async function fitBgNbd(d: RfmData, penalizer = 0): Promise<Fit<BgNbd>> {
  const n = d.x.length;
  let meanT = 0;
  for (let i = 0; i < n; i++) meanT += d.T[i]! / n;
  const start = Float64Array.from([0, Math.log(Math.max(meanT, 1e-6)), 0, 0]);
  return fitLogParams(start, (theta) => -logLikelihood(params(theta), d) / n, penalizer, (theta) => params(theta), n, (m) => [m.r, m.alpha, m.a, m.b]);
}

/** The shared optimiser of the log-parameter models (BG/NBD, Gamma-Gamma). */
export async function fitLogParams<M>(
  start: Float64Array,
  meanNll: (theta: Float64Array) => number,
  penalizer: number,
  toModel: (theta: Float64Array) => M,
  n: number,
  values: (m: M) => number[],
): Promise<Fit<M>> {
  const k = start.length;
  const objective = (theta: Float64Array) => {
    let pen = 0;
    for (let j = 0; j < k; j++) pen += theta[j]! * theta[j]!;
    const f = meanNll(theta) + penalizer * pen;
    return Number.isFinite(f) ? f : 1e300;
  };
  const h = 1e-6;
  const fg = (theta: Float64Array, grad: Float64Array) => {
    const f = objective(theta);
    const probe = Float64Array.from(theta);
    for (let j = 0; j < k; j++) {
      probe[j] = theta[j]! + h;
      const up = objective(probe);
      probe[j] = theta[j]! - h;
      const down = objective(probe);
      probe[j] = theta[j]!;
      grad[j] = (up - down) / (2 * h);
    }
    return f;
  };
  const res = await minimize(fg, start, { maxIterations: 500, l1: 0, tolerance: 1e-12 });
  const model = toModel(res.x);
  const ll = -meanNll(res.x) * n;
  return { model, logLikelihood: ll, iterations: res.iterations, converged: res.converged, standardErrors: standardErrors(res.x, meanNll, n, values(model)) };
}

/** SE of each parameter: sqrt of the inverse Hessian of -LL in log-parameters, times the parameter. */
function standardErrors(theta: Float64Array, meanNll: (t: Float64Array) => number, n: number, value: number[]): number[] {
  const k = theta.length;
  const h = 1e-4;
  const f = (t: Float64Array) => meanNll(t) * n;
  const H: number[][] = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const t = Float64Array.from(theta);
  const f0 = f(t);
  for (let i = 0; i < k; i++) {
    for (let j = i; j < k; j++) {
      let v: number;
      if (i === j) {
        t[i] = theta[i]! + h;
        const up = f(t);
        t[i] = theta[i]! - h;
        const down = f(t);
        t[i] = theta[i]!;
        v = (up - 2 * f0 + down) / (h * h);
      } else {
        const at = (di: number, dj: number) => {
          t[i] = theta[i]! + di;
          t[j] = theta[j]! + dj;
          const y = f(t);
          t[i] = theta[i]!;
          t[j] = theta[j]!;
          return y;
        };
        v = (at(h, h) - at(h, -h) - at(-h, h) + at(-h, -h)) / (4 * h * h);
      }
      H[i]![j] = v;
      H[j]![i] = v;
    }
  }
  const inv = invert(H);
  return value.map((p, i) => (inv ? Math.sqrt(Math.max(inv[i]![i]!, 0)) * p : NaN));
}

/** Gauss-Jordan inverse of a small symmetric matrix (null when singular). */
function invert(M: number[][]): number[][] | null {
  const k = M.length;
  const A = M.map((row, i) => [...row, ...Array.from({ length: k }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < k; c++) {
    let p = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(A[r]![c]!) > Math.abs(A[p]![c]!)) p = r;
    if (Math.abs(A[p]![c]!) < 1e-300) return null;
    [A[c], A[p]] = [A[p]!, A[c]!];
    const pivot = A[c]![c]!;
    for (let j = 0; j < 2 * k; j++) A[c]![j]! /= pivot;
    for (let r = 0; r < k; r++) {
      if (r === c) continue;
      const f = A[r]![c]!;
      for (let j = 0; j < 2 * k; j++) A[r]![j]! -= f * A[c]![j]!;
    }
  }
  return A.map((row) => row.slice(k));
}

/** The log of the odds that a customer has dropped out: ln[a/(b+x-1)] + (r+x) ln[(α+T)/(α+t_x)] (x > 0). */
function logDeadOdds(m: BgNbd, x: number, tx: number, T: number): number {
  if (x <= 0) return -Infinity;
  return Math.log(m.a) - Math.log(m.b + x - 1) + (m.r + x) * (Math.log(m.alpha + T) - Math.log(m.alpha + tx));
}

/** P(alive | x, t_x, T) (equation 11): 1 / (1 + δ(x>0) a/(b+x-1) ((α+T)/(α+t_x))^(r+x)). */
export function pAlive(m: BgNbd, x: number, tx: number, T: number): number {
  const lo = logDeadOdds(m, x, tx, T);
  return lo === -Infinity ? 1 : 1 / (1 + Math.exp(Math.min(lo, 700)));
}

/**
 * Expected purchases in (T, T+t] given (x, t_x, T) (equation 10):
 * (a+b+x-1)/(a-1) [1 - ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(α+T+t))]
 *   / [1 + δ(x>0) a/(b+x-1) ((α+T)/(α+t_x))^(r+x)].
 */
export function expectedPurchases(m: BgNbd, x: number, tx: number, T: number, t: number): number {
  if (t <= 0) return 0;
  const { r, alpha, a, b } = m;
  const z = t / (alpha + T + t);
  const f = hyp2f1(r + x, b + x, a + b + x - 1, z);
  const inner = f.sign * Math.exp((r + x) * Math.log((alpha + T) / (alpha + T + t)) + f.log);
  return ((a + b + x - 1) / (a - 1)) * (1 - inner) * pAlive(m, x, tx, T);
}

/** Expected purchases of a new customer in (0, t] (equation 9), for the calibration check. */
export function expectedPurchasesNew(m: BgNbd, t: number): number {
  if (t <= 0) return 0;
  const { r, alpha, a, b } = m;
  const f = hyp2f1(r, b, a + b - 1, t / (alpha + t));
  return ((a + b - 1) / (a - 1)) * (1 - f.sign * Math.exp(r * Math.log(alpha / (alpha + t)) + f.log));
}
