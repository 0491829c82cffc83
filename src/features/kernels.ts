// Feature preparation's passes over a row-major n x d matrix without NULLs, compiled once per d
// (see models/kmeans/kernels.ts): one sweep over the rows with each column's state in locals,
// where the per-column loops swept the whole matrix once per column, reading every cache line
// d times. Same arithmetic in the same
// order as the per-column loops: the results are bit-identical.

import { UNROLL_MAX, unroll } from '../util/unroll.ts';

/**
 * Per column j: out[5j..5j+4] = sum, min, max, and the sums of (v - shift[j]) and its square.
 * Returns NaN when some value is NaN or infinite (0 otherwise).
 */
type MomentsFn = (M: Float64Array, n: number, shift: Float64Array, out: Float64Array) => number;
/** M[i, j] = (M[i, j] - mean[j]) * inv[j], in place. */
type StandardizeFn = (M: Float64Array, n: number, mean: Float64Array, inv: Float64Array) => void;

export interface FeatureKernels {
  moments: MomentsFn;
  standardize: StandardizeFn;
}

function compile(d: number): FeatureKernels {
  const moments = `
    ${unroll(d, (j) => `let sum${j} = 0, min${j} = Infinity, max${j} = -Infinity, a${j} = 0, b${j} = 0; const sh${j} = shift[${j}];`)}
    let bad = 0, t = 0;
    for (let p = 0, end = n * ${d}; p < end; p += ${d}) {
      ${unroll(d, (j) => `const v${j} = M[p + ${j}]; sum${j} += v${j}; if (v${j} < min${j}) min${j} = v${j}; if (v${j} > max${j}) max${j} = v${j}; t = v${j} - sh${j}; a${j} += t; b${j} += t * t; bad += v${j} - v${j};`)}
    }
    ${unroll(d, (j) => `out[${5 * j}] = sum${j}; out[${5 * j + 1}] = min${j}; out[${5 * j + 2}] = max${j}; out[${5 * j + 3}] = a${j}; out[${5 * j + 4}] = b${j};`)}
    return bad;`;
  const standardize = `
    ${unroll(d, (j) => `const m${j} = mean[${j}], i${j} = inv[${j}];`)}
    for (let p = 0, end = n * ${d}; p < end; p += ${d}) {
      ${unroll(d, (j) => `M[p + ${j}] = (M[p + ${j}] - m${j}) * i${j};`)}
    }`;
  return {
    moments: new Function('M', 'n', 'shift', 'out', moments) as MomentsFn,
    standardize: new Function('M', 'n', 'mean', 'inv', standardize) as StandardizeFn,
  };
}

const compiled = new Map<number, FeatureKernels>();

/** The kernels for d columns, or null above UNROLL_MAX (callers then loop per column). */
export function featureKernels(d: number): FeatureKernels | null {
  if (d > UNROLL_MAX) return null;
  let k = compiled.get(d);
  if (!k) compiled.set(d, (k = compile(d)));
  return k;
}
