// The hot loops of k-means, compiled once per feature count d.
//
// A row's d values are read into locals once and the distance to each centroid is written out
// term by term: V8 then keeps the row in registers instead of re-reading it (with bounds
// checks) for every centroid, several times faster than an inner `for (j < d)`. Terms are added in the same order as the loop would, so results are
// bit-identical. The source is built from the integer d alone (no user text reaches it).
// Above UNROLL_MAX dimensions the same kernels keep the inner loop.

import { UNROLL_MAX, unroll } from '../../util/unroll.ts';

/**
 * Nearest centroid of every row (Euclidean, or cosine given the centroids' norms cn); returns
 * how many rows changed label.
 */
type NearestFn = (X: Float64Array, C: Float64Array, n: number, k: number, labels: Int32Array, dist2: Float64Array, cn: Float64Array | null) => number;
/** Nearest with Hamerly bounds (Euclidean): see assignBounded in lloyd.ts. */
type BoundedFn = (X: Float64Array, C: Float64Array, n: number, k: number, labels: Int32Array, dist2: Float64Array, lower: Float64Array, drift: number) => number;
/** Per-cluster sums of the rows and member counts. */
type AccumulateFn = (X: Float64Array, n: number, labels: Int32Array, sums: Float64Array, counts: Float64Array) => void;
/**
 * Silhouette's pair loop over m rows side by side (X, labels L): sums[a * k + c] gathers the
 * distances of row a to the rows of cluster c. Cosine passes the rows' norms (rn), else null.
 */
type PairSumsFn = (X: Float64Array, L: Int32Array, m: number, k: number, sums: Float64Array, rn: Float64Array | null) => void;

export interface Kernels {
  nearestEuclidean: NearestFn;
  nearestCosine: NearestFn;
  nearestBounded: BoundedFn;
  accumulate: AccumulateFn;
  pairSumsEuclidean: PairSumsFn;
  pairSumsCosine: PairSumsFn;
}

/**
 * The statements for one row: `load` reads the row (at offset p) into locals when unrolled, and
 * `each(x, j)` gives the statement for dimension j, where x is the row's value there.
 */
function perDim(d: number, each: (x: string, j: string) => string): { load: string; body: string } {
  if (d > UNROLL_MAX) return { load: '', body: `for (let j = 0; j < ${d}; j++) { ${each('X[p + j]', 'j')} }` };
  return { load: unroll(d, (j) => `const x${j} = X[p + ${j}];`), body: unroll(d, (j) => each(`x${j}`, String(j))) };
}

function compile(d: number): Kernels {
  const sq = perDim(d, (x, j) => `t = ${x} - C[q + ${j}]; acc += t * t;`);
  const dot = perDim(d, (x, j) => `acc += ${x} * C[q + ${j}];`);
  const add = perDim(d, (x, j) => `sums[q + ${j}] += ${x};`);
  const nearest = (dist: { load: string; body: string }, score: string) => `
    let changed = 0;
    for (let i = 0, p = 0; i < n; i++, p += ${d}) {
      ${dist.load}
      let best = Infinity, bc = 0;
      for (let c = 0, q = 0; c < k; c++, q += ${d}) {
        let acc = 0, t = 0;
        ${dist.body}
        ${score}
        if (acc < best) { best = acc; bc = c; }
      }
      if (labels[i] !== bc) changed++;
      labels[i] = bc;
      dist2[i] = best;
    }
    return changed;`;
  const bounded = `
    let changed = 0;
    for (let i = 0, p = 0; i < n; i++, p += ${d}) {
      ${sq.load}
      const own = labels[i];
      if (own >= 0) {
        const bound = lower[i] - drift;
        lower[i] = bound;
        let acc = 0, t = 0;
        const q = own * ${d};
        ${sq.body}
        // Strictly inside the bound (with room for rounding): no other centroid can be as near.
        if (bound > 0 && acc < bound * bound * (1 - 1e-9)) { dist2[i] = acc; continue; }
      }
      let best = Infinity, second = Infinity, bc = 0;
      for (let c = 0, q = 0; c < k; c++, q += ${d}) {
        let acc = 0, t = 0;
        ${sq.body}
        if (acc < best) { second = best; best = acc; bc = c; } else if (acc < second) second = acc;
      }
      if (own !== bc) changed++;
      labels[i] = bc;
      dist2[i] = best;
      lower[i] = Math.sqrt(second);
    }
    return changed;`;
  const accumulate = `
    for (let i = 0, p = 0; i < n; i++, p += ${d}) {
      const c = labels[i];
      const q = c * ${d};
      counts[c]++;
      ${add.load}
      ${add.body}
    }`;
  const pairSums = (dist: { load: string; body: string }, distance: string) => `
    const C = X;
    for (let a = 0, p = 0; a < m; a++, p += ${d}) {
      ${dist.load}
      const la = L[a];
      let own = 0; // this row's sums are gathered in a scalar where they can be
      for (let b = a + 1, q = p + ${d}; b < m; b++, q += ${d}) {
        let acc = 0, t = 0;
        ${dist.body}
        const dist = ${distance};
        const lb = L[b];
        if (lb === la) own += dist; else sums[a * k + lb] += dist;
        sums[b * k + la] += dist;
      }
      sums[a * k + la] += own;
    }`;
  // Cosine: the "squared distance" to centroid c is 1 - x.c/|c| on unit rows (geometry.ts).
  const cosineScore = `acc = cn[c] > 0 ? Math.max(0, 1 - acc / cn[c]) : 1;`;
  return {
    nearestEuclidean: new Function('X', 'C', 'n', 'k', 'labels', 'dist2', 'cn', nearest(sq, '')) as NearestFn,
    nearestCosine: new Function('X', 'C', 'n', 'k', 'labels', 'dist2', 'cn', nearest(dot, cosineScore)) as NearestFn,
    nearestBounded: new Function('X', 'C', 'n', 'k', 'labels', 'dist2', 'lower', 'drift', bounded) as BoundedFn,
    accumulate: new Function('X', 'n', 'labels', 'sums', 'counts', accumulate) as AccumulateFn,
    pairSumsEuclidean: new Function('X', 'L', 'm', 'k', 'sums', 'rn', pairSums(sq, 'Math.sqrt(acc)')) as PairSumsFn,
    pairSumsCosine: new Function(
      'X', 'L', 'm', 'k', 'sums', 'rn',
      pairSums(dot, '(rn[a] * rn[b] > 0 ? Math.sqrt(Math.max(0, 1 - acc / (rn[a] * rn[b]))) : 1)'),
    ) as PairSumsFn,
  };
}

const compiled = new Map<number, Kernels>();

export function kernels(d: number): Kernels {
  let k = compiled.get(d);
  if (!k) compiled.set(d, (k = compile(d)));
  return k;
}
