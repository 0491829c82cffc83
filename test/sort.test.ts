import { describe, expect, it } from 'vitest';
import { SortScratch, sortedCopy } from '../src/util/sort.ts';
import { Random } from '../src/util/random.ts';

describe('radix sort of float64 values', () => {
  const rng = new Random(3);
  const cases: [string, () => number][] = [
    ['uniform in [-1, 1)', () => rng.next() * 2 - 1],
    ['few distinct integers', () => Math.floor(rng.next() * 5)],
    ['huge magnitudes of both signs', () => (rng.next() - 0.5) * 1e300],
    ['zeros, signed zero and subnormals', () => [0, -0, 1e-310, -1e-310, 3][Math.floor(rng.next() * 5)]!],
  ];
  for (const [name, draw] of cases) {
    it(`orders ${name} as Float64Array.prototype.sort does`, () => {
      const values = new Float64Array(5000).map(draw);
      const expected = Float64Array.from(values).sort();
      const got = sortedCopy(values);
      expect(Array.from(got).map((v) => (Object.is(v, -0) ? '-0' : v))).toEqual(Array.from(expected).map((v) => (Object.is(v, -0) ? '-0' : v)));
      expect(values.length).toBe(got.length);
    });
  }

  it('sorts in reused scratch memory, one array after another, of different sizes', () => {
    const scratch = new SortScratch();
    for (const size of [3000, 800, 5000, 600]) {
      const values = new Float64Array(size).map(() => (rng.next() - 0.3) * 1000);
      const got = Array.from(sortedCopy(values, scratch));
      expect(got).toEqual(Array.from(Float64Array.from(values).sort()));
    }
  });
});
