// Source text for loops over a row's d values, written out term by term (see kmeans/kernels.ts
// for why and what it gains). Built from integers only: no user text reaches compiled code.

export const UNROLL_MAX = 32;

/** `each(j)` for j = 0 .. d - 1, joined. */
export function unroll(d: number, each: (j: number) => string): string {
  return Array.from({ length: d }, (_, j) => each(j)).join(' ');
}
