import { describe, expect, it } from 'vitest';
import { compress, expectedPurchases, expectedPurchasesNew, fitBgNbd, logLikelihood, pAlive, type BgNbd } from '../src/models/clv/bgnbd.ts';
import { expectedSpend, fitGammaGamma, spendLogLikelihood } from '../src/models/clv/gamma-gamma.ts';
import { hyp2f1, lgamma } from '../src/models/clv/special.ts';
import { fitParetoNbd, paretoExpectedPurchases, paretoExpectedPurchasesNew, paretoLogLikelihood, paretoPAlive, type ParetoNbd } from '../src/models/clv/pareto-nbd.ts';
import { Random } from '../src/util/random.ts';

// The buy-'til-you-die models against their own generative processes (parameters recovered
// within their standard errors) and their closed forms against Monte Carlo and numerical
// integration computed here.

function normal(rng: Random): number {
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}
/** Gamma(shape k, rate 1) by Marsaglia & Tsang (k < 1 boosted by U^(1/k)). */
function gamma(rng: Random, k: number): number {
  if (k < 1) return gamma(rng, k + 1) * Math.pow(rng.next(), 1 / k);
  const d = k - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}
const beta = (rng: Random, a: number, b: number) => {
  const x = gamma(rng, a);
  return x / (x + gamma(rng, b));
};

/** One BG/NBD (or MBG/NBD) customer observed for T: repeat purchases, time of the last one. */
function simulateCustomer(rng: Random, m: BgNbd, T: number): { x: number; tx: number } {
  const lambda = gamma(rng, m.r) / m.alpha;
  const p = beta(rng, m.a, m.b);
  let t = 0;
  let x = 0;
  let tx = 0;
  if (m.variant === 'mbg_nbd' && rng.next() < p) return { x, tx }; // gone right after the first purchase
  for (;;) {
    t += -Math.log(1 - rng.next()) / lambda;
    if (t > T) break;
    x++;
    tx = t;
    if (rng.next() < p) break;
  }
  return { x, tx };
}

describe('special functions', () => {
  it('lgamma and 2F1 against known values', () => {
    expect(lgamma(1)).toBeCloseTo(0, 13);
    expect(lgamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 13);
    expect(lgamma(101)).toBeCloseTo(363.73937555556347, 9); // ln(100!)
    // 2F1(1, 1; 2; z) = -ln(1 - z)/z
    const z = 0.7;
    const f = hyp2f1(1, 1, 2, z);
    expect(f.sign * Math.exp(f.log)).toBeCloseTo(-Math.log(1 - z) / z, 12);
    // 2F1(a, b; b; z) = (1 - z)^-a, also with c < 0 (alternating signs while c + n < 0)
    const g = hyp2f1(2.5, 3.2, 3.2, 0.4);
    expect(Math.exp(g.log)).toBeCloseTo(Math.pow(0.6, -2.5), 10);
    const h = hyp2f1(1.5, 0.3, -0.4, 0.3); // by the series summed directly in doubles
    let term = 1;
    let sum = 1;
    for (let n = 0; n < 400; n++) {
      term *= ((1.5 + n) * (0.3 + n) * 0.3) / ((-0.4 + n) * (n + 1));
      sum += term;
    }
    expect(h.sign * Math.exp(h.log)).toBeCloseTo(sum, 10);
  });
});

describe('BG/NBD', () => {
  const truth: BgNbd = { r: 0.24, alpha: 4.41, a: 0.79, b: 2.43 }; // the CDNOW fit of the paper

  it('recovers the parameters of 50,000 simulated customers within 3 standard errors', async () => {
    const rng = new Random(17);
    const n = 50_000;
    const x = new Float64Array(n);
    const tx = new Float64Array(n);
    const T = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      T[i] = 27 + 12 * rng.next(); // cohorts joining over 12 weeks, 39 weeks observed at most
      const c = simulateCustomer(rng, truth, T[i]!);
      x[i] = c.x;
      tx[i] = c.tx;
    }
    const started = performance.now();
    const fit = await fitBgNbd({ x, tx, T });
    const seconds = (performance.now() - started) / 1000;
    const est = [fit.model.r, fit.model.alpha, fit.model.a, fit.model.b];
    const tru = [truth.r, truth.alpha, truth.a, truth.b];
    est.forEach((e, i) => expect(Math.abs(e - tru[i]!), `parameter ${i}: ${e} vs ${tru[i]} (se ${fit.standardErrors[i]})`).toBeLessThan(3 * fit.standardErrors[i]!));
    expect(fit.converged).toBe(true);
    // the maximum: the truth is no more likely than the fit
    expect(logLikelihood(truth, { x, tx, T })).toBeLessThanOrEqual(fit.logLikelihood + 1e-6);
    expect(seconds).toBeGreaterThan(0);
  });

  it('above 200,000 customers the fit starts from a sample\'s and still ends at the full maximum (250,000 simulated)', async () => {
    const rng = new Random(99);
    const n = 250_000;
    const x = new Float64Array(n);
    const tx = new Float64Array(n);
    const T = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      T[i] = 27 + 12 * rng.next();
      const c = simulateCustomer(rng, truth, T[i]!);
      x[i] = c.x;
      tx[i] = c.tx;
    }
    const fit = await fitBgNbd({ x, tx, T });
    const est = [fit.model.r, fit.model.alpha, fit.model.a, fit.model.b];
    [truth.r, truth.alpha, truth.a, truth.b].forEach((v, i) => expect(Math.abs(est[i]! - v), `parameter ${i}`).toBeLessThan(3 * fit.standardErrors[i]!));
    // a maximum: no direction of the log-parameters improves the likelihood
    const theta = est.map(Math.log);
    for (let j = 0; j < 4; j++) {
      for (const h of [1e-3, -1e-3]) {
        const t = [...theta];
        t[j]! += h;
        const m = { r: Math.exp(t[0]!), alpha: Math.exp(t[1]!), a: Math.exp(t[2]!), b: Math.exp(t[3]!) };
        expect(logLikelihood(m, { x, tx, T })).toBeLessThanOrEqual(fit.logLikelihood + 1e-6);
      }
    }
  });

  it('expected purchases of a new customer equal the Monte Carlo mean of simulated ones', () => {
    const rng = new Random(5);
    const m: BgNbd = { r: 0.8, alpha: 5, a: 1.5, b: 4 };
    const n = 200_000;
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const c = simulateCustomer(rng, m, 30);
      sum += c.x;
      sq += c.x * c.x;
    }
    const mean = sum / n;
    const se = Math.sqrt((sq / n - mean * mean) / n);
    expect(Math.abs(expectedPurchasesNew(m, 30) - mean)).toBeLessThan(3 * se);
  });

  it('P(alive) and conditional expected purchases equal a numerical integration over the posterior of (λ, p)', () => {
    const m: BgNbd = { r: 0.8, alpha: 5, a: 1.5, b: 4 };
    const cases = [
      { x: 0, tx: 0, T: 30 },
      { x: 2, tx: 10, T: 30 },
      { x: 6, tx: 28, T: 30 },
      { x: 4, tx: 5, T: 40 },
    ];
    const horizon = 20;
    // midpoint rule: log λ over [ln 1e-7, ln 60], p over (0, 1)
    const NL = 1500;
    const NP = 1500;
    const lo = Math.log(1e-7);
    const hi = Math.log(60);
    const lnPriorL = (l: number) => m.r * Math.log(m.alpha) + (m.r - 1) * Math.log(l) - m.alpha * l - lgamma(m.r);
    const lnPriorP = (p: number) => (m.a - 1) * Math.log(p) + (m.b - 1) * Math.log(1 - p) + lgamma(m.a + m.b) - lgamma(m.a) - lgamma(m.b);
    for (const c of cases) {
      let z = 0;
      let alive = 0;
      let purchases = 0;
      for (let i = 0; i < NL; i++) {
        const u = lo + ((i + 0.5) * (hi - lo)) / NL;
        const l = Math.exp(u);
        const wl = lnPriorL(l) + u; // Jacobian of λ = e^u
        for (let j = 0; j < NP; j++) {
          const p = (j + 0.5) / NP;
          const w = wl + lnPriorP(p);
          const aliveL = Math.exp(w + c.x * Math.log(1 - p) + c.x * Math.log(l) - l * c.T);
          const deadL = c.x > 0 ? Math.exp(w + Math.log(p) + (c.x - 1) * Math.log(1 - p) + c.x * Math.log(l) - l * c.tx) : 0;
          z += aliveL + deadL;
          alive += aliveL;
          purchases += (aliveL * (1 - Math.exp(-l * p * horizon))) / p;
        }
      }
      expect(pAlive(m, c.x, c.tx, c.T), JSON.stringify(c)).toBeCloseTo(alive / z, 3);
      expect(expectedPurchases(m, c.x, c.tx, c.T, horizon) / (purchases / z), JSON.stringify(c)).toBeCloseTo(1, 3);
    }
  });

  it('extreme customers give finite values', () => {
    const m: BgNbd = { r: 0.24, alpha: 4.41, a: 0.79, b: 2.43 };
    for (const [x, tx, T] of [[300, 500, 500], [300, 10, 500], [0, 0, 0], [0, 0, 1e-3], [1, 1e-3, 1e-3], [50, 0.5, 0.5], [2, 2000, 2000]] as const) {
      for (const t of [0.5, 52, 520]) {
        const e = expectedPurchases(m, x, tx, T, t);
        const p = pAlive(m, x, tx, T);
        expect(Number.isFinite(e) && e >= 0, `E ${x},${tx},${T},${t} = ${e}`).toBe(true);
        expect(p >= 0 && p <= 1, `p ${p}`).toBe(true);
      }
    }
    // a customer whose last purchase was long ago is less likely alive than one who just bought
    expect(pAlive(m, 10, 5, 100)).toBeLessThan(pAlive(m, 10, 99, 100));
  });
});

describe('Gamma-Gamma', () => {
  it('recovers p, q, γ of 50,000 simulated customers within 3 standard errors; E[M|x, m] shrinks towards the population mean', async () => {
    const rng = new Random(23);
    const truth = { p: 6.25, q: 3.74, gamma: 15.44 }; // the paper's CDNOW fit
    const n = 50_000;
    const x = new Float64Array(n);
    const mm = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = 1 + Math.floor(rng.next() * 8);
      const nu = gamma(rng, truth.q) / truth.gamma;
      let s = 0;
      for (let k = 0; k < x[i]!; k++) s += gamma(rng, truth.p) / nu;
      mm[i] = s / x[i]!;
    }
    const fit = await fitGammaGamma({ x, m: mm });
    const est = [fit.model.p, fit.model.q, fit.model.gamma];
    const tru = [truth.p, truth.q, truth.gamma];
    est.forEach((e, i) => expect(Math.abs(e - tru[i]!), `parameter ${i}: ${e} vs ${tru[i]} (se ${fit.standardErrors[i]})`).toBeLessThan(3 * fit.standardErrors[i]!));
    const population = (truth.p * truth.gamma) / (truth.q - 1);
    expect(expectedSpend(truth, 0, 0)).toBeCloseTo(population, 10);
    const one = expectedSpend(truth, 1, 100);
    const many = expectedSpend(truth, 50, 100);
    expect(one).toBeGreaterThan(population);
    expect(many).toBeGreaterThan(one);
    expect(many).toBeLessThan(100);
  });
});

describe('likelihood gradients', () => {
  it('the analytic gradients in the log-parameters equal central differences; compressed data give the same likelihood', async () => {
    const rng = new Random(3);
    const n = 500;
    const x = Float64Array.from({ length: n }, () => Math.floor(rng.next() * 6));
    const T = Float64Array.from({ length: n }, () => 5 + Math.floor(rng.next() * 10));
    const tx = Float64Array.from(x, (v, i) => (v > 0 ? Math.floor(rng.next() * T[i]!) : 0));
    const m = Float64Array.from({ length: n }, () => 10 + rng.next() * 50);
    const bg = (t: number[]) => ({ r: Math.exp(t[0]!), alpha: Math.exp(t[1]!), a: Math.exp(t[2]!), b: Math.exp(t[3]!) });
    const gg = (t: number[]) => ({ p: Math.exp(t[0]!), q: Math.exp(t[1]!), gamma: Math.exp(t[2]!) });
    const check = (theta: number[], f: (t: number[], g?: Float64Array) => number) => {
      const g = new Float64Array(theta.length);
      f(theta, g);
      theta.forEach((_, j) => {
        const up = [...theta];
        const down = [...theta];
        up[j]! += 1e-6;
        down[j]! -= 1e-6;
        expect(g[j]!, `d/dθ${j}`).toBeCloseTo((f(up) - f(down)) / 2e-6, 3);
      });
    };
    check([Math.log(0.7), Math.log(3), Math.log(1.3), Math.log(2.5)], (t, g) => logLikelihood(bg(t), { x, tx, T }, g));
    const pos = [...x.keys()].filter((i) => x[i]! > 0);
    check([Math.log(4), Math.log(3), Math.log(20)], (t, g) => spendLogLikelihood(gg(t), { x: Float64Array.from(pos, (i) => x[i]!), m: Float64Array.from(pos, (i) => m[i]!) }, g));
    const c = await compress({ x, tx, T });
    expect(c.x.length).toBeLessThan(n);
    const p = bg([0, 1, 0.2, 0.5]);
    expect(logLikelihood(p, c)).toBeCloseTo(logLikelihood(p, { x, tx, T }), 8);
  });
});

describe('MBG/NBD', () => {
  it('recovers its parameters from 50,000 simulated customers; P(alive) and expected purchases equal the posterior integration', async () => {
    const truth: BgNbd = { r: 0.5, alpha: 3, a: 1.8, b: 6, variant: 'mbg_nbd' };
    const rng = new Random(31);
    const n = 50_000;
    const x = new Float64Array(n);
    const tx = new Float64Array(n);
    const T = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      T[i] = 30 + 20 * rng.next();
      const c = simulateCustomer(rng, truth, T[i]!);
      x[i] = c.x;
      tx[i] = c.tx;
    }
    const fit = await fitBgNbd({ x, tx, T }, 0, 'mbg_nbd');
    expect(fit.model.variant).toBe('mbg_nbd');
    const est = [fit.model.r, fit.model.alpha, fit.model.a, fit.model.b];
    [truth.r, truth.alpha, truth.a, truth.b].forEach((v, i) => expect(Math.abs(est[i]! - v), `parameter ${i}: ${est[i]} vs ${v} (se ${fit.standardErrors[i]})`).toBeLessThan(3 * fit.standardErrors[i]!));
    // the BG/NBD fitted to MBG/NBD data explains it worse
    const bg = await fitBgNbd({ x, tx, T });
    expect(fit.logLikelihood).toBeGreaterThan(bg.logLikelihood);

    const m = truth;
    const horizon = 15;
    const NL = 1500;
    const NP = 1200;
    const lo = Math.log(1e-13); // r = 0.5: the prior's mass below e^lo is ~(α e^lo)^r
    const hi = Math.log(60);
    for (const c of [{ x: 0, tx: 0, T: 30 }, { x: 3, tx: 12, T: 30 }]) {
      let z = 0;
      let alive = 0;
      let purchases = 0;
      for (let i = 0; i < NL; i++) {
        const u = lo + ((i + 0.5) * (hi - lo)) / NL;
        const l = Math.exp(u);
        const wl = m.r * Math.log(m.alpha) + m.r * Math.log(l) - m.alpha * l - lgamma(m.r);
        for (let j = 0; j < NP; j++) {
          const p = (j + 0.5) / NP;
          const w = wl + (m.a - 1) * Math.log(p) + (m.b - 1) * Math.log(1 - p) + lgamma(m.a + m.b) - lgamma(m.a) - lgamma(m.b);
          const aliveL = Math.exp(w + (c.x + 1) * Math.log(1 - p) + c.x * Math.log(l) - l * c.T);
          const deadL = Math.exp(w + Math.log(p) + c.x * Math.log(1 - p) + c.x * Math.log(l) - l * c.tx);
          z += aliveL + deadL;
          alive += aliveL;
          purchases += (aliveL * (1 - Math.exp(-l * p * horizon))) / p;
        }
      }
      expect(pAlive(m, c.x, c.tx, c.T), JSON.stringify(c)).toBeCloseTo(alive / z, 3);
      expect(expectedPurchases(m, c.x, c.tx, c.T, horizon) / (purchases / z), JSON.stringify(c)).toBeCloseTo(1, 3);
    }
    // a new customer's expected purchases against Monte Carlo
    let sum = 0;
    let sq = 0;
    const mc = 200_000;
    for (let i = 0; i < mc; i++) {
      const c = simulateCustomer(rng, m, 20);
      sum += c.x;
      sq += c.x * c.x;
    }
    const mean = sum / mc;
    expect(Math.abs(expectedPurchasesNew(m, 20) - mean)).toBeLessThan(3 * Math.sqrt((sq / mc - mean * mean) / mc));
  });
});

describe('Pareto/NBD', () => {
  const truth: ParetoNbd = { r: 0.55, alpha: 10.58, s: 0.61, beta: 11.67 }; // the CDNOW fit of Fader, Hardie & Lee (2005)

  it('recovers its parameters from 30,000 simulated customers within 3 standard errors', async () => {
    const rng = new Random(41);
    const n = 30_000;
    const x = new Float64Array(n);
    const tx = new Float64Array(n);
    const T = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      T[i] = Math.round((27 + 12 * rng.next()) * 7) / 7; // whole days, in weeks
      const lambda = gamma(rng, truth.r) / truth.alpha;
      const mu = gamma(rng, truth.s) / truth.beta;
      const death = -Math.log(1 - rng.next()) / mu;
      const end = Math.min(death, T[i]!);
      let t = 0;
      for (;;) {
        t += -Math.log(1 - rng.next()) / lambda;
        if (t > end) break;
        x[i]!++;
        tx[i] = Math.round(t * 7) / 7;
      }
    }
    const fit = await fitParetoNbd({ x, tx, T });
    const est = [fit.model.r, fit.model.alpha, fit.model.s, fit.model.beta];
    [truth.r, truth.alpha, truth.s, truth.beta].forEach((v, i) => expect(Math.abs(est[i]! - v), `parameter ${i}: ${est[i]} vs ${v} (se ${fit.standardErrors[i]})`).toBeLessThan(3 * fit.standardErrors[i]!));
    expect(paretoLogLikelihood(truth, { x, tx, T })).toBeLessThanOrEqual(fit.logLikelihood + 1e-6);
  });

  it('P(alive) and conditional expected purchases equal a numerical integration over the posterior of (λ, μ); extremes are finite', () => {
    const p = truth;
    const horizon = 20;
    const N = 1400;
    const lo = Math.log(1e-14);
    const hi = Math.log(80);
    const lnPrior = (v: number, shape: number, rate: number) => shape * Math.log(rate) + shape * Math.log(v) - rate * v - lgamma(shape); // with the Jacobian of v = e^u
    for (const c of [{ x: 0, tx: 0, T: 30 }, { x: 2, tx: 10, T: 30 }, { x: 7, tx: 28, T: 32 }, { x: 3, tx: 3, T: 40 }]) {
      let z = 0;
      let alive = 0;
      let purchases = 0;
      for (let i = 0; i < N; i++) {
        const l = Math.exp(lo + ((i + 0.5) * (hi - lo)) / N);
        const wl = lnPrior(l, p.r, p.alpha);
        for (let j = 0; j < N; j++) {
          const mu = Math.exp(lo + ((j + 0.5) * (hi - lo)) / N);
          const w = wl + lnPrior(mu, p.s, p.beta);
          const aliveL = Math.exp(w + c.x * Math.log(l) - (l + mu) * c.T);
          const deadL = Math.exp(w + c.x * Math.log(l) + Math.log(mu) - Math.log(l + mu)) * (Math.exp(-(l + mu) * c.tx) - Math.exp(-(l + mu) * c.T));
          z += aliveL + deadL;
          alive += aliveL;
          purchases += (aliveL * l * -Math.expm1(-mu * horizon)) / mu;
        }
      }
      expect(paretoPAlive(p, c.x, c.tx, c.T), JSON.stringify(c)).toBeCloseTo(alive / z, 3);
      expect(paretoExpectedPurchases(p, c.x, c.tx, c.T, horizon) / (purchases / z), JSON.stringify(c)).toBeCloseTo(1, 3);
    }
    for (const [x, tx, T] of [[300, 500, 500], [300, 10, 500], [0, 0, 0], [0, 0, 1e-3], [50, 0.5, 0.5], [2, 2000, 2000]] as const) {
      const e = paretoExpectedPurchases(p, x, tx, T, 52);
      const a = paretoPAlive(p, x, tx, T);
      expect(Number.isFinite(e) && e >= 0 && a >= 0 && a <= 1, `${x},${tx},${T}: ${e}, ${a}`).toBe(true);
    }
    expect(paretoExpectedPurchasesNew({ ...p, s: 1 }, 10)).toBeCloseTo(((p.r * p.beta) / p.alpha) * Math.log((p.beta + 10) / p.beta), 10);
  });
});
