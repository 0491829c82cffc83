// Distances in model space. Euclidean works on the rows as they are; cosine (BigQuery ML's
// sqrt(1 - cos)) works on rows scaled to unit length, where the "squared distance" to a
// centroid c is 1 - x.c/|c|.

export type DistanceType = 'euclidean' | 'cosine';

export interface Space {
  X: Float64Array; // n x d, row-major (unit rows for cosine)
  n: number;
  d: number;
  distance: DistanceType;
}

export function makeSpace(X: Float64Array, n: number, d: number, distance: DistanceType): Space {
  if (distance === 'euclidean') return { X, n, d, distance };
  const U = new Float64Array(new SharedArrayBuffer(X.length * 8));
  for (let i = 0, p = 0; i < n; i++, p += d) {
    let s = 0;
    for (let j = 0; j < d; j++) s += X[p + j]! * X[p + j]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) U[p + j] = X[p + j]! * inv;
  }
  return { X: U, n, d, distance };
}

/** Squared distance between row i of the space and point q (offset qo in array Q). */
export function rowDist2(s: Space, i: number, Q: Float64Array, qo: number, qNorm = 1): number {
  const { X, d } = s;
  const p = i * s.d;
  if (s.distance === 'euclidean') {
    let acc = 0;
    for (let j = 0; j < d; j++) {
      const t = X[p + j]! - Q[qo + j]!;
      acc += t * t;
    }
    return acc;
  }
  let dot = 0;
  for (let j = 0; j < d; j++) dot += X[p + j]! * Q[qo + j]!;
  return qNorm > 0 ? Math.max(0, 1 - dot / qNorm) : 1;
}

/** Squared distance between two points of model space in the model's metric. */
export function pointDist2(distance: DistanceType, A: Float64Array, ao: number, B: Float64Array, bo: number, d: number): number {
  if (distance === 'euclidean') {
    let acc = 0;
    for (let j = 0; j < d; j++) {
      const t = A[ao + j]! - B[bo + j]!;
      acc += t * t;
    }
    return acc;
  }
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let j = 0; j < d; j++) {
    dot += A[ao + j]! * B[bo + j]!;
    na += A[ao + j]! * A[ao + j]!;
    nb += B[bo + j]! * B[bo + j]!;
  }
  return na > 0 && nb > 0 ? Math.max(0, 1 - dot / Math.sqrt(na * nb)) : 1;
}

export function norms(C: Float64Array, k: number, d: number): Float64Array {
  const out = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += C[c * d + j]! * C[c * d + j]!;
    out[c] = Math.sqrt(s);
  }
  return out;
}
