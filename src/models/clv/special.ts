// Special functions of the "buy 'til you die" models, in log space so that extreme customers
// (hundreds of repeat purchases, decades of age) give finite values.

// Lanczos approximation, g = 7, n = 9 (Numerical Recipes' coefficients): ~15 digits for x > 0.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** log Γ(x) for x > 0. */
export function lgamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
  const y = x - 1;
  let s = LANCZOS[0]!;
  for (let i = 1; i < 9; i++) s += LANCZOS[i]! / (y + i);
  const t = y + 7.5;
  return HALF_LOG_2PI + (y + 0.5) * Math.log(t) - t + Math.log(s);
}

/** ψ(x) = d/dx log Γ(x), x > 0: the recurrence up to 6, then the asymptotic series. */
export function digamma(x: number): number {
  let acc = 0;
  while (x < 6) {
    acc -= 1 / x;
    x += 1;
  }
  const f = 1 / (x * x);
  return acc + Math.log(x) - 0.5 / x - f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f * (5 / 660)))));
}

/** log(e^a + e^b) without overflow. */
export function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log1p(Math.exp(-Math.abs(a - b)));
}

/** Most terms the hypergeometric series may take (z near 1 converges slowly). */
export const HYP2F1_MAX_TERMS = 200_000;

/**
 * 2F1(a, b; c; z) for 0 <= z < 1, a, b > 0 and c not 0, -1, -2, ..., as sign and log of its
 * magnitude: the Gauss series, each term the previous times (a+n)(b+n)z / ((c+n)(n+1)) (negative
 * while c + n < 0). Terms may grow by hundreds of orders of magnitude before they fall (a and b
 * in the hundreds): the sum is kept in doubles rescaled by a power of ten whose log is carried
 * aside (a logarithm per term cost four times more). The sum stops once the tail (at most
 * term * z/(1 - z) once the ratio is below one) cannot move it.
 */
export function hyp2f1(a: number, b: number, c: number, z: number): { sign: number; log: number } {
  if (z === 0) return { sign: 1, log: 0 };
  if (!(z > 0 && z < 1) || !(a > 0 && b > 0) || (c <= 0 && Number.isInteger(c))) return { sign: NaN, log: NaN };
  const tail = z / (1 - z);
  let term = 1;
  let sum = 1;
  let logScale = 0;
  for (let n = 0; n < HYP2F1_MAX_TERMS; n++) {
    const ratio = (((a + n) * (b + n)) / ((c + n) * (n + 1))) * z;
    term *= ratio;
    sum += term;
    if (Math.abs(sum) > 1e250 || Math.abs(term) > 1e250) {
      sum *= 1e-250;
      term *= 1e-250;
      logScale += 250 * Math.LN10;
    }
    if (c + n > 0 && Math.abs(ratio) < 1 && Math.abs(term) * tail <= Math.abs(sum) * 1e-16) {
      return { sign: Math.sign(sum), log: Math.log(Math.abs(sum)) + logScale };
    }
  }
  // not converged (z within ~1e-5 of 1): no value rather than a wrong one
  return { sign: NaN, log: NaN };
}
