import { fitLogParams, subsample, type Fit } from './bgnbd.ts';
import { digamma, lgamma } from './special.ts';

// The Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value
// curves"; Colombo & Jiang 1999): a customer's transaction values are Gamma(p, ν), ν ~
// Gamma(q, γ) across customers, independent of the purchase process. Fitted on the customers
// with repeat purchases, from their number x and mean value m.

export interface GammaGamma {
  p: number;
  q: number;
  gamma: number;
}

export const SPEND_PARAMETERS = ['p', 'q', 'gamma'] as const;

export interface SpendData {
  x: Float64Array; // repeat purchases (> 0)
  m: Float64Array; // their mean value (> 0)
}

/**
 * Sum of log-likelihoods of the mean values (constant terms in m dropped, as lifetimes does)
 * and, when `grad` is given, its gradient in the log-parameters (ln p, ln q, ln γ).
 */
export function spendLogLikelihood(g: GammaGamma, d: SpendData, grad?: Float64Array): number {
  const { p, q, gamma } = g;
  const base = -lgamma(q) + q * Math.log(gamma);
  const logs = logsOf(d);
  const term = new Map<number, { lg: number; dpq: number; dp: number }>();
  let ll = 0;
  let gp = 0;
  let gq = 0;
  let gg = 0;
  const n = d.x.length;
  for (let i = 0; i < n; i++) {
    const x = d.x[i]!;
    let t = term.get(x);
    if (!t) term.set(x, (t = { lg: lgamma(p * x + q) - lgamma(p * x), dpq: grad ? digamma(p * x + q) : 0, dp: grad ? digamma(p * x) : 0 }));
    const lm = logs.m[i]!;
    const lx = logs.x[i]!;
    const xm = x * d.m[i]!;
    const lxm = Math.log(xm + gamma);
    const px = p * x;
    ll += t.lg + (px - 1) * lm + px * lx - (px + q) * lxm;
    if (grad) {
      gp += x * (t.dpq - t.dp + lm + lx - lxm);
      gq += t.dpq - lxm;
      gg -= (px + q) / (xm + gamma);
    }
  }
  ll += n * base;
  if (grad) {
    grad[0] = p * gp;
    grad[1] = q * (gq + n * (Math.log(gamma) - digamma(q)));
    grad[2] = gamma * (gg + (n * q) / gamma);
  }
  return ll;
}

/** ln m and ln x of every customer, once per data set (the optimiser evaluates it ~60 times). */
const LOGS = new WeakMap<SpendData, { m: Float64Array; x: Float64Array }>();
function logsOf(d: SpendData): { m: Float64Array; x: Float64Array } {
  let l = LOGS.get(d);
  if (!l) LOGS.set(d, (l = { m: d.m.map(Math.log), x: d.x.map(Math.log) }));
  return l;
}

export async function fitGammaGamma(d: SpendData, penalizer = 0): Promise<Fit<GammaGamma>> {
  const n = d.x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += d.m[i]! / n;
  const toModel = (t: Float64Array): GammaGamma => ({ p: Math.exp(t[0]!), q: Math.exp(t[1]!), gamma: Math.exp(t[2]!) });
  let start = Float64Array.from([0, Math.log(2), Math.log(Math.max(mean, 1e-6))]);
  const sample = subsample(d);
  if (sample) {
    const g = (await fitGammaGamma(sample, penalizer)).model;
    start = Float64Array.from([g.p, g.q, g.gamma], Math.log);
  }
  return fitLogParams(start, (t, grad) => spendLogLikelihood(toModel(t), d, grad), penalizer, toModel, n, (g) => [g.p, g.q, g.gamma]);
}

/**
 * E[M | x, m] (equation 5): a weighted mean of the population mean p γ/(q-1) and the customer's
 * own mean m, the weight of m growing with x; the population mean for x = 0.
 */
export function expectedSpend(g: GammaGamma, x: number, m: number): number {
  const { p, q, gamma } = g;
  if (x <= 0) return (p * gamma) / (q - 1);
  return (p * (gamma + x * m)) / (p * x + q - 1);
}
