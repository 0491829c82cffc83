import { pacer } from '../../util/yield.ts';
import { covariance } from './train.ts';

// The 2-D view every clustering model keeps of its prepared features (the report's segment
// scatter, ml_project): the first two principal components of the model-space rows, from an
// evenly spaced sample of at most SAMPLE_ROWS rows. Only two eigenvectors are needed, so they
// come from orthogonal iteration on the covariance (d^2 work per step, the event loop runs
// between steps) rather than a full eigen-decomposition (d^3 in one call).

const SAMPLE_ROWS = 20_000;
const MAX_STEPS = 5_000;

export interface Projection2D {
  center: number[]; // model-space column means
  components: number[][]; // 2 x dims, unit loadings, largest loading positive
  explained_variance_ratio: number[]; // of each of the two components
  sample_rows: number;
}

export async function fitProjection(X: Float64Array, n: number, d: number): Promise<Projection2D> {
  const m = Math.min(n, SAMPLE_ROWS);
  const rows = Uint32Array.from({ length: m }, (_, r) => Math.floor((r * n) / m));
  const { center, C } = await covariance(X, n, d, rows);
  let trace = 0;
  for (let j = 0; j < d; j++) trace += C[j * d + j]!;
  const k = Math.min(2, d);
  const Q = startingVectors(C, d, k);
  const pace = pacer(20);
  for (let step = 0; step < MAX_STEPS; step++) {
    const Z = multiply(C, Q, d, k);
    orthonormalize(Z, d, k);
    // the step's change, as the distance between the old and new vectors (signs aligned)
    let change = 0;
    for (let c = 0; c < k; c++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += Z[c * d + j]! * Q[c * d + j]!;
      let dist = 0;
      for (let j = 0; j < d; j++) dist += (Z[c * d + j]! - Math.sign(dot) * Q[c * d + j]!) ** 2;
      change = Math.max(change, Math.sqrt(dist));
    }
    Q.set(Z);
    if (change < 1e-13) break;
    await pace();
  }
  const { vectors, values } = rayleighRitz(C, Q, d, k);
  const components: number[][] = [];
  for (let c = 0; c < 2; c++) {
    const v = c < k ? Array.from(vectors.subarray(c * d, c * d + d)) : new Array<number>(d).fill(0);
    const big = v.reduce((b, x) => (Math.abs(x) > Math.abs(b) ? x : b), 0);
    components.push(big < 0 ? v.map((x) => -x) : v);
  }
  return {
    center: Array.from(center),
    components,
    explained_variance_ratio: [0, 1].map((c) => (c < k && trace > 0 ? Math.max(0, values[c]!) / trace : 0)),
    sample_rows: m,
  };
}

/** The unit vectors of the k largest diagonal entries, slightly mixed so no eigenvector is missed. */
function startingVectors(C: Float64Array, d: number, k: number): Float64Array {
  const order = Array.from({ length: d }, (_, j) => j).sort((a, b) => C[b * d + b]! - C[a * d + a]!);
  const Q = new Float64Array(k * d);
  for (let c = 0; c < k; c++) {
    for (let j = 0; j < d; j++) Q[c * d + j] = 1e-3 * Math.sin(1 + c * 7.1 + j * 3.7);
    Q[c * d + order[c]!] = 1;
  }
  orthonormalize(Q, d, k);
  return Q;
}

function multiply(C: Float64Array, Q: Float64Array, d: number, k: number): Float64Array {
  const Z = new Float64Array(k * d);
  for (let c = 0; c < k; c++)
    for (let a = 0; a < d; a++) {
      let s = 0;
      for (let b = 0; b < d; b++) s += C[a * d + b]! * Q[c * d + b]!;
      Z[c * d + a] = s;
    }
  return Z;
}

/** Modified Gram-Schmidt on the k rows of V (each of length d). */
function orthonormalize(V: Float64Array, d: number, k: number): void {
  for (let c = 0; c < k; c++) {
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += V[c * d + j]! * V[p * d + j]!;
      for (let j = 0; j < d; j++) V[c * d + j] -= dot * V[p * d + j]!;
    }
    let norm = 0;
    for (let j = 0; j < d; j++) norm += V[c * d + j]! ** 2;
    norm = Math.sqrt(norm);
    for (let j = 0; j < d; j++) V[c * d + j] = norm > 0 ? V[c * d + j]! / norm : 0;
  }
}

/** The eigenpairs of C within span(Q): the k x k matrix Qᵀ C Q diagonalized (k ≤ 2, closed form). */
function rayleighRitz(C: Float64Array, Q: Float64Array, d: number, k: number): { vectors: Float64Array; values: number[] } {
  const CQ = multiply(C, Q, d, k);
  const B = (a: number, b: number) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += Q[a * d + j]! * CQ[b * d + j]!;
    return s;
  };
  if (k === 1) return { vectors: Q, values: [B(0, 0)] };
  const p = B(0, 0), q = B(1, 1), r = (B(0, 1) + B(1, 0)) / 2;
  const mean = (p + q) / 2;
  const radius = Math.hypot((p - q) / 2, r);
  const theta = 0.5 * Math.atan2(2 * r, p - q); // rotation that diagonalizes [[p, r], [r, q]]
  const cs = Math.cos(theta), sn = Math.sin(theta);
  const vectors = new Float64Array(2 * d);
  for (let j = 0; j < d; j++) {
    vectors[j] = cs * Q[j]! + sn * Q[d + j]!;
    vectors[d + j] = -sn * Q[j]! + cs * Q[d + j]!;
  }
  return { vectors, values: [mean + radius, mean - radius] };
}
