import { compress, fitLogParams, subsample, type Fit, type RfmData } from './bgnbd.ts';
import { hyp2f1, lgamma, logAddExp } from './special.ts';

// The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): while alive, a customer buys at
// Poisson rate λ ~ Gamma(r, α) and dies after an exponential lifetime of rate μ ~ Gamma(s, β),
// at any time (not only after a purchase, as in BG/NBD). The likelihood and the conditional
// expectations follow Fader & Hardie's "A Note on Deriving the Pareto/NBD Model and Related
// Expressions" (2005), with the Gauss hypergeometric term A0 in log space.

export interface ParetoNbd {
  r: number;
  alpha: number;
  s: number;
  beta: number;
}

export const PARETO_PARAMETERS = ['r', 'alpha', 's', 'beta'] as const;

/**
 * ln A0 (equations 19-20 of the note): with M = max(α, β), m = min(α, β), c = r + s + x and
 * b = s + 1 when α >= β, else r + x,
 * A0 = 2F1(c, b; c+1; (M-m)/(M+t_x)) / (M+t_x)^c - 2F1(c, b; c+1; (M-m)/(M+T)) / (M+T)^c,
 * a difference of positive terms, taken in log space (the first is the larger).
 */
export function logA0(p: ParetoNbd, x: number, tx: number, T: number): number {
  const { r, alpha, s, beta } = p;
  const big = Math.max(alpha, beta);
  const gap = Math.abs(alpha - beta);
  const c = r + s + x;
  const b = alpha >= beta ? s + 1 : r + x;
  const one = hyp2f1(c, b, c + 1, gap / (big + tx)).log - c * Math.log(big + tx);
  const two = hyp2f1(c, b, c + 1, gap / (big + T)).log - c * Math.log(big + T);
  if (!(one > two)) return -Infinity; // t_x = T: A0 = 0
  return one + Math.log1p(-Math.exp(two - one));
}

/** ln L of one customer: ln[Γ(r+x) α^r β^s / Γ(r)] + ln[(α+T)^-(r+x) (β+T)^-s + s/(r+s+x) A0]. */
function logLikelihoodOne(p: ParetoNbd, lgr: number, x: number, tx: number, T: number, lgrx: number): number {
  const { r, alpha, s, beta } = p;
  const A1 = lgrx - lgr + r * Math.log(alpha) + s * Math.log(beta);
  const alive = -(r + x) * Math.log(alpha + T) - s * Math.log(beta + T);
  const dead = Math.log(s) - Math.log(r + s + x) + logA0(p, x, tx, T);
  return A1 + logAddExp(alive, dead);
}

export function paretoLogLikelihood(p: ParetoNbd, d: RfmData): number {
  const lgr = lgamma(p.r);
  const perX = new Map<number, number>();
  let ll = 0;
  for (let i = 0; i < d.x.length; i++) {
    const x = d.x[i]!;
    let lgrx = perX.get(x);
    if (lgrx === undefined) perX.set(x, (lgrx = lgamma(p.r + x)));
    ll += (d.w ? d.w[i]! : 1) * logLikelihoodOne(p, lgr, x, d.tx[i]!, d.T[i]!, lgrx);
  }
  return ll;
}

const paramsOf = (t: Float64Array): ParetoNbd => ({ r: Math.exp(t[0]!), alpha: Math.exp(t[1]!), s: Math.exp(t[2]!), beta: Math.exp(t[3]!) });

/**
 * Maximum likelihood on the log-parameters. The derivatives of A0 in the parameters have no
 * convenient closed form: the gradient is by central differences (eight more evaluations).
 */
export async function fitParetoNbd(data: RfmData, penalizer = 0): Promise<Fit<ParetoNbd>> {
  const n = data.x.length;
  let meanT = 0;
  for (let i = 0; i < n; i++) meanT += data.T[i]! / n;
  const d = await compress(data);
  let start = Float64Array.from([0, Math.log(Math.max(meanT, 1e-6)), 0, Math.log(Math.max(meanT, 1e-6))]);
  const sample = subsample(data);
  if (sample) {
    const m = (await fitParetoNbd(sample, penalizer)).model;
    start = Float64Array.from([m.r, m.alpha, m.s, m.beta], Math.log);
  }
  const h = 1e-6;
  const ll = (theta: Float64Array, grad: Float64Array) => {
    const f = paretoLogLikelihood(paramsOf(theta), d);
    const probe = Float64Array.from(theta);
    for (let j = 0; j < 4; j++) {
      probe[j] = theta[j]! + h;
      const up = paretoLogLikelihood(paramsOf(probe), d);
      probe[j] = theta[j]! - h;
      const down = paretoLogLikelihood(paramsOf(probe), d);
      probe[j] = theta[j]!;
      grad[j] = (up - down) / (2 * h);
    }
    return f;
  };
  return fitLogParams(start, ll, penalizer, paramsOf, n, (m) => [m.r, m.alpha, m.s, m.beta]);
}

/** ln of P(dead)/P(alive): ln s - ln(r+s+x) + (r+x) ln(α+T) + s ln(β+T) + ln A0. */
function logDeadOdds(p: ParetoNbd, x: number, tx: number, T: number): number {
  return Math.log(p.s) - Math.log(p.r + p.s + x) + (p.r + x) * Math.log(p.alpha + T) + p.s * Math.log(p.beta + T) + logA0(p, x, tx, T);
}

export function paretoPAlive(p: ParetoNbd, x: number, tx: number, T: number): number {
  return 1 / (1 + Math.exp(Math.min(700, logDeadOdds(p, x, tx, T))));
}

/** (1 - ((β+T)/(β+T+t))^(s-1)) / (s-1), its limit ln((β+T+t)/(β+T)) at s = 1. */
function lifetimeFactor(s: number, beta: number, T: number, t: number): number {
  const l = Math.log((beta + T) / (beta + T + t));
  if (Math.abs(s - 1) < 1e-9) return -l;
  return -Math.expm1((s - 1) * l) / (s - 1);
}

/** Expected purchases in (T, T+t] given (x, t_x, T) (equation 41): P(alive) (r+x)/(α+T) (β+T) lifetime factor. */
export function paretoExpectedPurchases(p: ParetoNbd, x: number, tx: number, T: number, t: number): number {
  if (t <= 0) return 0;
  return paretoPAlive(p, x, tx, T) * ((p.r + x) * (p.beta + T)) / (p.alpha + T) * lifetimeFactor(p.s, p.beta, T, t);
}

/** Expected purchases of a new customer in (0, t] (equation 17): rβ/(α(s-1)) [1 - (β/(β+t))^(s-1)]. */
export function paretoExpectedPurchasesNew(p: ParetoNbd, t: number): number {
  return ((p.r * p.beta) / p.alpha) * lifetimeFactor(p.s, p.beta, 0, t);
}
