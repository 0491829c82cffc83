import { describe, expect, it } from 'vitest';
import { trainLogisticRegression } from '../src/models/linear/train.ts';
import { Random } from '../src/util/random.ts';

// The binary logistic fit against optimality computed independently: at the solution the
// gradient of sum_i w_i logloss_i + l2/2 |w|^2 (written out here row by row) is ~0.
describe('logistic_reg (binary)', () => {
  for (const rowsCount of [4003, 4000]) {
    it(`${rowsCount} rows (four at a time, and a tail): the gradient vanishes at the fitted weights`, async () => {
      const n = 5000;
      const d = 7;
      const rng = new Random(9);
      const X = Float64Array.from({ length: n * d }, (_, k) => (k % d === 6 ? (rng.next() < 0.3 ? 1 : 0) : rng.next() * 2 - 1));
      const y = Float64Array.from({ length: n }, (_, i) => (rng.next() < 1 / (1 + Math.exp(-(2 * X[i * d]! - X[i * d + 1]! + X[i * d + 6]!))) ? 1 : 0));
      const w = Float64Array.from(y, (v) => (v === 1 ? 1.5 : 0.8));
      const rows = Uint32Array.from({ length: rowsCount }, (_, i) => i + 3);
      const l2 = 0.5;
      const m = await trainLogisticRegression(X, d, { problem: 'binary', K: 1, y, w, classes: ['f', 't'] }, rows, { l1: 0, l2, maxIterations: 500, fitIntercept: true });
      const beta = m.weights[0]!;
      const grad = new Float64Array(d + 1);
      for (const i of rows) {
        let z = m.intercepts[0]!;
        for (let j = 0; j < d; j++) z += beta[j]! * X[i * d + j]!;
        const r = w[i]! * (1 / (1 + Math.exp(-z)) - y[i]!);
        for (let j = 0; j < d; j++) grad[j] += r * X[i * d + j]!;
        grad[d] += r;
      }
      for (let j = 0; j < d; j++) grad[j] += l2 * beta[j]!;
      for (const g of grad) expect(Math.abs(g)).toBeLessThan(1e-3);
      expect(beta[0]!).toBeGreaterThan(1); // it learned the signal
    });
  }
});
