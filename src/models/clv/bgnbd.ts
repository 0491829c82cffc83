import { minimize } from '../linear/lbfgs.ts';
import { digamma, hyp2f1, lgamma } from './special.ts';
import { yieldToEventLoop } from '../../util/yield.ts';

// The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while
// active, a customer buys at Poisson rate λ ~ Gamma(r, α); after each repeat purchase they drop
// out with probability p ~ Beta(a, b). Fitted by maximum likelihood on (x, t_x, T) per customer
// = (frequency, recency, age) of ml_rfm.

export interface BgNbd {
  r: number;
  alpha: number;
  a: number;
  b: number;
  /**
   * mbg_nbd (Batislam, Denizel & Filiztekin 2007): a customer may also drop out right after
   * the first purchase, so one-time buyers can be gone too. Absent: BG/NBD. Every formula
   * below is BG/NBD's with b + x shifted by one (s = 1) and the dropout term for every x.
   */
  variant?: 'mbg_nbd';
}

export type PurchaseModel = 'bg_nbd' | 'mbg_nbd';

/** 0 for BG/NBD, 1 for MBG/NBD. */
export const shiftOf = (m: Pick<BgNbd, 'variant'>): number => (m.variant === 'mbg_nbd' ? 1 : 0);

export interface RfmData {
  x: Float64Array; // frequency (repeat purchases)
  tx: Float64Array; // recency
  T: Float64Array; // age
  /** How many customers each row stands for (absent: one each). */
  w?: Float64Array;
}

/**
 * The distinct (x, t_x, T) rows with their counts: customers who bought on the same days have
 * the same likelihood (every one-time buyer of a cohort day is one row).
 */
export async function compress(d: RfmData): Promise<RfmData> {
  // nested maps on the numbers themselves (string keys cost 1.5 s per million customers)
  const index = new Map<number, Map<number, Map<number, number>>>();
  const x: number[] = [];
  const tx: number[] = [];
  const T: number[] = [];
  const w: number[] = [];
  let yielded = performance.now();
  for (let i = 0; i < d.x.length; i++) {
    if ((i & 4095) === 0 && performance.now() - yielded > 50) {
      await yieldToEventLoop();
      yielded = performance.now();
    }
    let byTx = index.get(d.T[i]!);
    if (!byTx) index.set(d.T[i]!, (byTx = new Map()));
    let byX = byTx.get(d.tx[i]!);
    if (!byX) byTx.set(d.tx[i]!, (byX = new Map()));
    const at = byX.get(d.x[i]!);
    if (at !== undefined) {
      w[at]! += d.w ? d.w[i]! : 1;
      continue;
    }
    byX.set(d.x[i]!, x.length);
    x.push(d.x[i]!);
    tx.push(d.tx[i]!);
    T.push(d.T[i]!);
    w.push(d.w ? d.w[i]! : 1);
  }
  return { x: Float64Array.from(x), tx: Float64Array.from(tx), T: Float64Array.from(T), w: Float64Array.from(w) };
}

export const PARAMETERS = ['r', 'alpha', 'a', 'b'] as const;

const paramsOf = (variant: PurchaseModel) => (theta: Float64Array): BgNbd => ({
  r: Math.exp(theta[0]!), alpha: Math.exp(theta[1]!), a: Math.exp(theta[2]!), b: Math.exp(theta[3]!),
  ...(variant === 'mbg_nbd' ? { variant } : {}),
});

/** The largest frequency when every frequency is a small whole number (then the x-only terms are tabulated). */
function tabulable(x: Float64Array): number | null {
  let max = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (!(v >= 0 && v <= 1e6 && Number.isInteger(v))) return null;
    if (v > max) max = v;
  }
  return max;
}

/**
 * Sum of the customers' log-likelihoods (equation 6 of the paper, in logs) and, when `grad` is
 * given, its gradient with respect to the log-parameters (ln r, ln α, ln a, ln b):
 * ln[Γ(r+x) α^r / Γ(r)] + ln[B(a, b+x) / B(a, b)] + ln[e^A3 + δ(x>0) e^A4], with
 * A3 = -(r+x) ln(α+T) and A4 = ln a - ln(b+x-1) - (r+x) ln(α+t_x).
 * The terms of x alone are computed once per distinct frequency.
 */
export function logLikelihood(m: BgNbd, d: RfmData, grad?: Float64Array): number {
  const { r, alpha, a, b } = m;
  const s = shiftOf(m);
  const la = Math.log(alpha);
  const base = r * la - lgamma(r) + lgamma(a + b) - lgamma(b);
  const max = tabulable(d.x);
  if (max === null) throw new Error('BG/NBD frequencies are whole numbers of repeat purchases');
  const G = new Float64Array(max + 1);
  const DR = new Float64Array(max + 1);
  const DAB = new Float64Array(max + 1);
  const DB = new Float64Array(max + 1);
  const LB1 = new Float64Array(max + 1);
  const seen = new Uint8Array(max + 1);
  for (let i = 0; i < d.x.length; i++) seen[d.x[i]!] = 1;
  for (let x = 0; x <= max; x++) {
    if (!seen[x]) continue;
    G[x] = lgamma(r + x) + lgamma(b + x + s) - lgamma(a + b + x + s);
    if (grad) {
      DR[x] = digamma(r + x);
      DAB[x] = digamma(a + b + x + s);
      DB[x] = digamma(b + x + s);
    }
    LB1[x] = x > 0 || s ? Math.log(b + x - 1 + s) : 0;
  }
  const lnA = Math.log(a);
  let ll = 0;
  let gr = 0;
  let gal = 0;
  let ga = 0;
  let gb = 0;
  let n = 0;
  const rows = d.x.length;
  const w = d.w;
  for (let i = 0; i < rows; i++) {
    const x = d.x[i]!;
    const wi = w ? w[i]! : 1;
    n += wi;
    const aT = alpha + d.T[i]!;
    const lT = Math.log(aT);
    const rx = r + x;
    const A3 = -rx * lT;
    if (x <= 0 && !s) {
      ll += wi * (G[x]! + A3);
      if (grad) {
        gr += wi * (DR[x]! - lT);
        gal -= wi * (rx / aT);
        ga -= wi * DAB[x]!;
        gb += wi * (DB[x]! - DAB[x]!);
      }
      continue;
    }
    const atx = alpha + d.tx[i]!;
    const ltx = Math.log(atx);
    // A4 - A3 = ln a - ln(b+x-1) + (r+x) ln((α+T)/(α+t_x)); ln(e^A3 + e^A4) = A3 + softplus(A4 - A3)
    const diff = lnA - LB1[x]! + rx * (lT - ltx);
    const sp = diff > 0 ? diff + Math.log1p(Math.exp(-diff)) : Math.log1p(Math.exp(diff));
    ll += wi * (G[x]! + A3 + sp);
    if (grad) {
      const w4 = diff > 0 ? 1 / (1 + Math.exp(-diff)) : Math.exp(diff) / (1 + Math.exp(diff));
      const w3 = 1 - w4;
      gr += wi * (DR[x]! - w3 * lT - w4 * ltx);
      gal -= wi * (w3 * (rx / aT) + w4 * (rx / atx));
      ga += wi * (w4 / a - DAB[x]!);
      gb += wi * (DB[x]! - DAB[x]! - w4 / (b + x - 1 + s));
    }
  }
  ll += n * base;
  if (grad) {
    // the constants of every customer: ψ(a+b) and -ψ(r), -ψ(b), ln α, r/α; then the chain rule
    const dab = digamma(a + b);
    grad[0] = r * (gr + n * (la - digamma(r)));
    grad[1] = alpha * (gal + (n * r) / alpha);
    grad[2] = a * (ga + n * dab);
    grad[3] = b * (gb + n * (dab - digamma(b)));
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
 * `penalizer` × the sum of squared log-parameters (an L2 pull towards 1; 0 = plain maximum
 * likelihood), with the analytic gradient.
 */
export async function fitBgNbd(data: RfmData, penalizer = 0, variant: PurchaseModel = 'bg_nbd'): Promise<Fit<BgNbd>> {
  const params = paramsOf(variant);
  const n = data.x.length;
  let meanT = 0;
  for (let i = 0; i < n; i++) meanT += data.T[i]! / n;
  const d = await compress(data);
  let start = Float64Array.from([0, Math.log(Math.max(meanT, 1e-6)), 0, 0]);
  const sample = subsample(data);
  if (sample) {
    const m = (await fitBgNbd(sample, penalizer, variant)).model;
    start = Float64Array.from([m.r, m.alpha, m.a, m.b], Math.log);
  }
  return fitLogParams(start, (theta, grad) => logLikelihood(params(theta), d, grad), penalizer, params, n, (m) => [m.r, m.alpha, m.a, m.b]);
}

/** Above this many customers the optimiser starts from a fit on a sample of this size. */
const WARM_SAMPLE = 50_000;

/**
 * Every k-th customer, about WARM_SAMPLE of them, when there are many more (null otherwise): a
 * fit on them starts the full one close to its optimum, which then takes a few iterations over
 * every customer instead of thirty (the result is still the maximum over every customer).
 */
export function subsample<T extends { [K in keyof T]: Float64Array | undefined }>(d: T): T | null {
  const n = (Object.values(d) as (Float64Array | undefined)[]).find((v) => v)!.length;
  if (n < 4 * WARM_SAMPLE) return null;
  const step = Math.floor(n / WARM_SAMPLE);
  const pick = (v: Float64Array | undefined) => (v ? Float64Array.from({ length: Math.floor(n / step) }, (_, i) => v[i * step]!) : undefined);
  return Object.fromEntries(Object.entries(d as Record<string, Float64Array | undefined>).map(([k, v]) => [k, pick(v)])) as T;
}

/**
 * The shared optimiser of the log-parameter models (BG/NBD, Gamma-Gamma): `ll(theta, grad)`
 * returns the summed log-likelihood and writes its gradient in the log-parameters.
 */
export async function fitLogParams<M>(
  start: Float64Array,
  ll: (theta: Float64Array, grad: Float64Array) => number,
  penalizer: number,
  toModel: (theta: Float64Array) => M,
  n: number,
  values: (m: M) => number[],
): Promise<Fit<M>> {
  const k = start.length;
  const g = new Float64Array(k);
  const fg = (theta: Float64Array, grad: Float64Array) => {
    const v = ll(theta, g);
    let f = -v / n;
    for (let j = 0; j < k; j++) {
      f += penalizer * theta[j]! * theta[j]!;
      grad[j] = -g[j]! / n + 2 * penalizer * theta[j]!;
    }
    if (!Number.isFinite(f) || !grad.every(Number.isFinite)) {
      grad.fill(0);
      return 1e300;
    }
    return f;
  };
  const res = await minimize(fg, start, { maxIterations: 500, l1: 0, tolerance: 1e-10 });
  const model = toModel(res.x);
  const logLik = ll(res.x, new Float64Array(k));
  return { model, logLikelihood: logLik, iterations: res.iterations, converged: res.converged, standardErrors: await standardErrors(res.x, ll, values(model)) };
}

/** SE of each parameter: sqrt of the inverse Hessian of -LL in log-parameters (differences of the gradient), times the parameter. */
async function standardErrors(theta: Float64Array, ll: (t: Float64Array, grad: Float64Array) => number, value: number[]): Promise<number[]> {
  const k = theta.length;
  const h = 1e-5;
  const H: number[][] = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const t = Float64Array.from(theta);
  const up = new Float64Array(k);
  const down = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    await yieldToEventLoop(); // each evaluation runs over every customer
    t[i] = theta[i]! + h;
    ll(t, up);
    await yieldToEventLoop();
    t[i] = theta[i]! - h;
    ll(t, down);
    t[i] = theta[i]!;
    for (let j = 0; j < k; j++) H[i]![j] = -(up[j]! - down[j]!) / (2 * h);
  }
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) H[i]![j] = H[j]![i] = (H[i]![j]! + H[j]![i]!) / 2;
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

/** The log of the odds that a customer has dropped out: ln[a/(b+x-1+s)] + (r+x) ln[(α+T)/(α+t_x)] (BG/NBD: x > 0 only). */
function logDeadOdds(m: BgNbd, x: number, tx: number, T: number): number {
  const s = shiftOf(m);
  if (x <= 0 && !s) return -Infinity;
  return Math.log(m.a) - Math.log(m.b + x - 1 + s) + (m.r + x) * (Math.log(m.alpha + T) - Math.log(m.alpha + tx));
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
  const s = shiftOf(m);
  const f = hyp2f1(r + x, b + x + s, a + b + x - 1 + s, z);
  const inner = f.sign * Math.exp((r + x) * Math.log((alpha + T) / (alpha + T + t)) + f.log);
  return ((a + b + x - 1 + s) / (a - 1)) * (1 - inner) * pAlive(m, x, tx, T);
}

/** Expected purchases of a new customer in (0, t] (equation 9), for the calibration check. */
export function expectedPurchasesNew(m: BgNbd, t: number): number {
  if (t <= 0) return 0;
  const { r, alpha, a, b } = m;
  const s = shiftOf(m);
  const f = hyp2f1(r, b + s, a + b - 1 + s, t / (alpha + t));
  // BG/NBD (a+b-1)/(a-1); MBG/NBD b/(a-1) (lifetimes' expected_number_of_purchases_up_to_time)
  return ((s ? b : a + b - 1) / (a - 1)) * (1 - f.sign * Math.exp(r * Math.log(alpha / (alpha + t)) + f.log));
}
