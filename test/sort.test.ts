import { describe, expect, it } from 'vitest';
import { SortScratch, sortedCopy } from '../src/util/sort.ts';
import { Random } from '../src/util/random.ts';
import { select, selectRange } from '../src/util/select.ts';

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

describe('quickselect (util/select.ts)', () => {
  const rng = new Random(5);
  it('gives the k-th of the sorted values, on ranges of arrays with many ties', () => {
    for (const distinct of [3, 50, 1e9]) {
      const values = new Float64Array(3000).map(() => Math.floor(rng.next() * distinct));
      for (const k of [0, 1, 1499, 2998, 2999]) expect(select(Float64Array.from(values), k)).toBe(Float64Array.from(values).sort()[k]);
      // a range inside a larger array: the rest untouched
      const a = Float64Array.from(values);
      const v = selectRange(a, 1000, 1999, 1500);
      expect(v).toBe(values.slice(1000, 2000).sort()[500]);
      expect(Array.from(a.subarray(0, 1000))).toEqual(Array.from(values.subarray(0, 1000)));
      for (let i = 1000; i < 1500; i++) expect(a[i]).toBeLessThanOrEqual(v);
    }
  });

  it('ends on NaN values', () => {
    const a = Float64Array.from([NaN, 2, NaN, 1, NaN, 3, NaN]);
    for (let k = 0; k < a.length; k++) expect(typeof select(Float64Array.from(a), k)).toBe('number');
  });
});
