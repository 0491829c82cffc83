import { pacer } from '../../util/yield.ts';
// L-BFGS with OWL-QN's orthant handling for an L1 penalty (Andrew & Gao, 2007): minimises
// f(x) + l1 * sum_j mask_j |x_j| for a smooth convex f. With l1 = 0 it is plain L-BFGS with a
// backtracking (Armijo) line search.

export interface LbfgsOptions {
  maxIterations: number;
  l1: number;
  l1Mask?: Uint8Array; // 1 where the L1 penalty applies (not the intercepts)
  memory?: number;
  tolerance?: number; // relative decrease of the objective that counts as converged
}

export interface LbfgsResult {
  x: Float64Array;
  value: number;
  iterations: number;
  converged: boolean;
}

/** fg(x, grad) returns f(x) and writes its gradient into grad. */
export async function minimize(fg: (x: Float64Array, grad: Float64Array) => number, x0: Float64Array, o: LbfgsOptions): Promise<LbfgsResult> {
  const n = x0.length;
  const m = o.memory ?? 10;
  const tol = o.tolerance ?? 1e-9;
  const l1 = o.l1;
  const mask = o.l1Mask;
  const pen = (x: Float64Array) => {
    if (l1 === 0) return 0;
    let s = 0;
    for (let j = 0; j < n; j++) if (!mask || mask[j]) s += Math.abs(x[j]!);
    return l1 * s;
  };
  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let f = fg(x, g) + pen(x);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const pg = new Float64Array(n);
  const d = new Float64Array(n);
  const alpha = new Float64Array(m);
  let converged = false;
  let it = 0;
  const pause = pacer(); // between iterations: heartbeats, cancellation, other jobs
  for (; it < o.maxIterations; it++) {
    await pause();
    pseudoGradient(x, g, l1, mask, pg);
    let pgMax = 0;
    for (let j = 0; j < n; j++) pgMax = Math.max(pgMax, Math.abs(pg[j]!));
    if (pgMax < 1e-10) {
      converged = true;
      break;
    }
    // Two-loop recursion: d = -H pg.
    for (let j = 0; j < n; j++) d[j] = -pg[j]!;
    for (let i = S.length - 1; i >= 0; i--) {
      alpha[i] = rho[i]! * dot(S[i]!, d);
      axpy(-alpha[i]!, Y[i]!, d);
    }
    if (S.length) {
      const last = S.length - 1;
      const gamma = dot(S[last]!, Y[last]!) / dot(Y[last]!, Y[last]!);
      for (let j = 0; j < n; j++) d[j] = d[j]! * gamma;
    } else {
      // First step: a unit-length move along the steepest descent.
      const norm = Math.sqrt(dot(d, d));
      for (let j = 0; j < n; j++) d[j] = d[j]! / Math.max(norm, 1);
    }
    for (let i = 0; i < S.length; i++) {
      const beta = rho[i]! * dot(Y[i]!, d);
      axpy(alpha[i]! - beta, S[i]!, d);
    }
    if (l1 > 0) for (let j = 0; j < n; j++) if (d[j]! * -pg[j]! <= 0) d[j] = 0;

    // Backtracking line search, projected onto the current orthant when l1 > 0.
    let step = 1;
    let xNew = new Float64Array(n);
    let gNew = new Float64Array(n);
    let fNew = Infinity;
    let accepted = false;
    for (let ls = 0; ls < 40; ls++) {
      for (let j = 0; j < n; j++) {
        let v = x[j]! + step * d[j]!;
        if (l1 > 0 && (!mask || mask[j])) {
          const orthant = x[j] !== 0 ? Math.sign(x[j]!) : Math.sign(-pg[j]!);
          if (Math.sign(v) !== orthant) v = 0;
        }
        xNew[j] = v;
      }
      await pause();
      fNew = fg(xNew, gNew) + pen(xNew);
      let decrease = 0;
      for (let j = 0; j < n; j++) decrease += pg[j]! * (xNew[j]! - x[j]!);
      if (fNew <= f + 1e-4 * decrease) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) {
      converged = true; // no further decrease is possible at this precision
      break;
    }
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      s[j] = xNew[j]! - x[j]!;
      y[j] = gNew[j]! - g[j]!;
    }
    const sy = dot(s, y);
    if (sy > 1e-12) {
      if (S.length === m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }
    const rel = (f - fNew) / Math.max(Math.abs(fNew), 1);
    x = xNew;
    g = gNew;
    f = fNew;
    if (rel < tol) {
      converged = true;
      it++;
      break;
    }
  }
  return { x, value: f, iterations: it, converged };
}

function pseudoGradient(x: Float64Array, g: Float64Array, l1: number, mask: Uint8Array | undefined, out: Float64Array): void {
  for (let j = 0; j < x.length; j++) {
    const gj = g[j]!;
    if (l1 === 0 || (mask && !mask[j])) out[j] = gj;
    else if (x[j]! > 0) out[j] = gj + l1;
    else if (x[j]! < 0) out[j] = gj - l1;
    else if (gj + l1 < 0) out[j] = gj + l1;
    else if (gj - l1 > 0) out[j] = gj - l1;
    else out[j] = 0;
  }
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j]! * b[j]!;
  return s;
}

function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let j = 0; j < x.length; j++) y[j] += a * x[j]!;
}
