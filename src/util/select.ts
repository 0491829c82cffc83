// The k-th smallest of a range of numbers, in place (quickselect), for medians and for
// HDBSCAN's k nearest (models/hdbscan/core-distances.ts), where it runs per row.

/** The k-th smallest value of `a` (0-based): O(n), reorders `a` in place. */
export function select(a: Float64Array, k: number): number {
  return selectRange(a, 0, a.length - 1, k);
}

/**
 * Reorders a[lo..hi] so that a[k] holds its order statistic, no larger values before it; returns
 * a[k]. Quickselect with branch-free partitions: every element is swapped and the write position
 * moves by the comparison's 0 or 1, so no branch depends on the (random) data.
 */
export function selectRange(a: Float64Array, lo: number, hi: number, k: number): number {
  while (hi > lo) {
    const x = a[lo]!, y = a[(lo + hi) >> 1]!, z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let w = lo;
    for (let i = lo; i <= hi; i++) {
      const v = a[i]!;
      a[i] = a[w]!;
      a[w] = v;
      w += +(v < pivot);
    }
    if (k < w) {
      hi = w - 1;
      continue;
    }
    if (w > lo) {
      lo = w;
      continue;
    }
    // nothing below the pivot: the values equal to it go first (at least one, so the range
    // shrinks; a NaN pivot gathers the NaNs, which nothing is below)
    let e = w;
    const nan = pivot !== pivot;
    for (let i = w; i <= hi; i++) {
      const v = a[i]!;
      a[i] = a[e]!;
      a[e] = v;
      e += +(nan ? v !== v : v === pivot);
    }
    if (k < e) return pivot;
    lo = e;
  }
  return a[k]!;
}
