import { describe, expect, it } from 'vitest';
import { ensembleParams } from '../src/models/supervised/options.ts';
import { binMatrix } from '../src/models/trees/bins.ts';
import { ensembleMargins, trainEnsemble, type Ensemble } from '../src/models/trees/ensemble.ts';
import { ensembleBaseline, ensembleShap, flatten, unflatten } from '../src/models/trees/shap.ts';
import { Random } from '../src/util/random.ts';

// TreeSHAP against the definition: Shapley values computed by brute force over every subset of
// features, with the tree's path-dependent conditional expectation E[f(x) | x_S] (a split on a
// feature outside S averages its children by cover).

function conditionalExpectation(m: Ensemble, S: Set<number>, x: Float64Array): number {
  let s = m.base[0]!;
  for (const t of m.trees) {
    const walk = (node: number): number => {
      const f = t.feature[node]!;
      if (f < 0) return t.value[node]!;
      if (S.has(f)) return walk(x[f]! <= t.threshold[node]! ? t.left[node]! : t.right[node]!);
      const l = t.left[node]!;
      const r = t.right[node]!;
      return (t.cover[l]! * walk(l) + t.cover[r]! * walk(r)) / t.cover[node]!;
    };
    s += walk(0);
  }
  return s;
}

const factorial = (k: number): number => (k <= 1 ? 1 : k * factorial(k - 1));

describe('TreeSHAP', () => {
  it('equals brute-force Shapley values and adds up to the prediction', async () => {
    const n = 1500;
    const d = 4;
    const rng = new Random(5);
    const X = new Float64Array(n * d);
    for (let i = 0; i < X.length; i++) X[i] = Math.floor(rng.next() * 6);
    const y = new Float64Array(n);
    // Interactions and a repeated feature along paths exercise the unwinding.
    for (let i = 0; i < n; i++) y[i] = 2 * X[i * d]! + (X[i * d + 1]! > 2 ? 3 * X[i * d + 2]! : 0) - (X[i * d]! > 3 ? X[i * d + 3]! : 0) + rng.next();
    const rows = Uint32Array.from({ length: n }, (_, i) => i);
    const res = await trainEnsemble(binMatrix(X, n, d, rows), X, { problem: 'regression', y, w: new Float64Array(n).fill(1), classes: null, K: 1 }, rows, null, ensembleParams('boosted', { max_iterations: 6, max_tree_depth: 5 }, 1), async () => undefined);
    const m = res.model;
    const F = await ensembleMargins(m, X, n, d);
    const baseline = ensembleBaseline(m)[0]!;
    for (let row = 0; row < 25; row++) {
      const x = X.subarray(row * d, row * d + d);
      const phi = ensembleShap(m, X, row * d, d, 0);
      for (let i = 0; i < d; i++) {
        let shapley = 0;
        for (let mask = 0; mask < 1 << d; mask++) {
          if (mask & (1 << i)) continue;
          const S = new Set<number>();
          for (let j = 0; j < d; j++) if (mask & (1 << j)) S.add(j);
          const weight = (factorial(S.size) * factorial(d - S.size - 1)) / factorial(d);
          shapley += weight * (conditionalExpectation(m, new Set([...S, i]), x) - conditionalExpectation(m, S, x));
        }
        expect(phi[i]).toBeCloseTo(shapley, 10);
      }
      expect(baseline + phi.reduce((a, b) => a + b, 0)).toBeCloseTo(F[row]!, 10);
    }
    // The stored form (flattened node arrays) gives the same trees back, split gains aside.
    const back = unflatten(flatten(m), m.base);
    expect(back.trees.map((t) => ({ ...t, gain: [] }))).toEqual(m.trees.map((t) => ({ ...t, gain: [] })));
  });
});
