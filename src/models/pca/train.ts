import { eigen } from './eigen.ts';
import { pacer } from '../../util/yield.ts';

// Principal component analysis (BigQuery ML's PCA model) of the model-space matrix: the
// eigenvectors of the covariance of the centred rows (sample covariance, n - 1), largest
// eigenvalues first, each component's sign fixed so that its largest loading is positive.

export interface PcaModel {
  center: Float64Array; // d: the model-space column means
  components: Float64Array; // k x d, row-major: unit loadings
  eigenvalues: Float64Array; // every eigenvalue (d), descending
  k: number;
}

export async function fitPca(X: Float64Array, n: number, d: number, o: { components: number | null; varianceRatio: number | null }): Promise<PcaModel> {
  const { center, C } = await covariance(X, n, d, null);
  const { values, vectors } = await eigen(C, d);
  const order = Array.from({ length: d }, (_, i) => i).sort((a, b) => values[b]! - values[a]!);
  const eigenvalues = Float64Array.from(order, (i) => Math.max(0, values[i]!));
  const total = eigenvalues.reduce((s, v) => s + v, 0);
  let k = Math.min(d, o.components ?? d);
  if (o.varianceRatio !== null && total > 0) {
    let acc = 0;
    k = d;
    for (let i = 0; i < d; i++) {
      acc += eigenvalues[i]! / total;
      if (acc >= o.varianceRatio - 1e-12) {
        k = i + 1;
        break;
      }
    }
  }
  const components = new Float64Array(k * d);
  for (let c = 0; c < k; c++) {
    let big = 0;
    const col = order[c]!;
    for (let j = 0; j < d; j++) if (Math.abs(vectors[j * d + col]!) > Math.abs(big)) big = vectors[j * d + col]!;
    const sign = big < 0 ? -1 : 1;
    for (let j = 0; j < d; j++) components[c * d + j] = sign * vectors[j * d + col]!;
  }
  return { center, components, eigenvalues, k };
}

/**
 * Column means and the sample covariance (upper triangle filled, row-major d x d) of the rows
 * of X, or of the listed rows only; accumulated in blocks so the event loop runs between them.
 */
export async function covariance(X: Float64Array, n: number, d: number, rows: Uint32Array | null): Promise<{ center: Float64Array; C: Float64Array }> {
  const m = rows ? rows.length : n;
  const at = (r: number) => (rows ? rows[r]! : r);
  const center = new Float64Array(d);
  for (let r = 0; r < m; r++) for (let j = 0, i = at(r); j < d; j++) center[j] += X[i * d + j]! / m;
  const C = new Float64Array(d * d);
  const row = new Float64Array(d);
  const pace = pacer();
  for (let r = 0; r < m; r++) {
    if ((r & 15) === 0) await pace(); // a row costs d^2: wide rows need frequent checks
    const i = at(r);
    for (let j = 0; j < d; j++) row[j] = X[i * d + j]! - center[j]!;
    for (let a = 0; a < d; a++) {
      const ra = row[a]!;
      if (ra === 0) continue;
      for (let b = a; b < d; b++) C[a * d + b] += ra * row[b]!;
    }
  }
  for (let a = 0; a < d; a++) for (let b = a; b < d; b++) {
    C[a * d + b] /= Math.max(1, m - 1);
    C[b * d + a] = C[a * d + b]!;
  }
  return { center, C };
}
