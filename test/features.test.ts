import { describe, expect, it } from 'vitest';
import type { Table } from '../src/data/columns.ts';
import { fitFeatures, transform } from '../src/features/prepare.ts';
import { Random } from '../src/util/random.ts';

// A numeric training set loads as one row-major matrix (k-means) or as one array per column
// (the other families); statistics and the standardized matrix must not depend on which.
describe('feature preparation of a row-major matrix', () => {
  const n = 5000;
  const names = ['a', 'b', 'c'];
  const d = names.length;
  const rng = new Random(9);
  const rows = Array.from({ length: n }, () => [1e6 + rng.next(), rng.next() * 10 - 5, Math.floor(rng.next() * 4)]);

  const columnWise = (nullAt?: number): Table => ({
    rows: n,
    columns: names.map((name, j) => ({
      kind: 'numeric' as const,
      name,
      values: Float64Array.from(rows, (r) => r[j]!),
      nulls: Uint8Array.from(rows, (_, i) => (i === nullAt && j === 1 ? 1 : 0)),
    })),
  });
  const rowMajor = (nullAt?: number): Table => {
    const M = new Float64Array(new SharedArrayBuffer(n * d * 8));
    rows.forEach((r, i) => M.set(r, i * d));
    return {
      rows: n,
      columns: names.map((name, j) => ({
        kind: 'numeric' as const,
        name,
        values: M,
        nulls: Uint8Array.from(rows, (_, i) => (i === nullAt && j === 1 ? 1 : 0)),
        stride: d,
        offset: j,
      })),
    };
  };

  for (const nullAt of [undefined, 17]) {
    it(`${nullAt === undefined ? 'without NULLs (one sweep)' : 'with a NULL (per column)'}: the same statistics and matrix as column by column`, () => {
      const a = columnWise(nullAt);
      const b = rowMajor(nullAt);
      const fa = fitFeatures(a, { standardize: true, maxCategories: 10 });
      const fb = fitFeatures(b, { standardize: true, maxCategories: 10 });
      expect(fb).toEqual(fa);
      // Independently: the mean and population standard deviation of column a.
      const mean = rows.reduce((s, r) => s + r[0]!, 0) / n;
      const sd = Math.sqrt(rows.reduce((s, r) => s + (r[0]! - mean) ** 2, 0) / n);
      expect(fa.stats[0]!.mean).toBeCloseTo(mean, 6);
      expect(fa.stats[0]!.stddev! / sd).toBeCloseTo(1, 9);
      const Xa = transform(a, fa.spec);
      const Xb = transform(b, fb.spec);
      expect(Array.from(Xb)).toEqual(Array.from(Xa));
      expect(Xb.buffer).toBe(b.columns[0]!.kind === 'numeric' ? b.columns[0]!.values.buffer : null); // standardized in place
    });
  }

  it('names the column and row of a NaN in a row-major matrix', () => {
    const b = rowMajor();
    const M = (b.columns[0] as { values: Float64Array }).values;
    M[40 * d + 2] = NaN;
    expect(() => fitFeatures(b, { standardize: true, maxCategories: 10 })).toThrow(/column "c" has the value NaN \(row 41\)/);
  });
});
