import { EigenvalueDecomposition, Matrix } from 'ml-matrix';

// The eigen-decomposition of a symmetric matrix (ml-matrix), as plain arrays: what eigen.ts runs
// on this thread or on a worker thread (eigen-thread.ts).

export interface Eigen {
  values: Float64Array; // d, in ml-matrix's order
  vectors: Float64Array; // d x d row-major: column i is the vector of values[i]
}

/** C: row-major d x d, symmetric. */
export function symmetricEigen(C: Float64Array, d: number): Eigen {
  const m = new Matrix(d, d);
  for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) m.set(a, b, C[a * d + b]!);
  const evd = new EigenvalueDecomposition(m, { assumeSymmetric: true });
  const v = evd.eigenvectorMatrix;
  const vectors = new Float64Array(d * d);
  for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) vectors[a * d + b] = v.get(a, b);
  return { values: Float64Array.from(evd.realEigenvalues), vectors };
}
