// Stable segment ids across retrains: the new centroids are matched to the previous version's
// by a minimum-cost assignment (Hungarian algorithm) on their squared distance in the new
// model's standardized space, so that segment 3 stays segment 3 when the data shifts a little.

/** Minimum-cost perfect matching of a square cost matrix: row i -> column result[i]. O(k^3). */
export function hungarian(cost: number[][]): number[] {
  const n = cost.length;
  const INF = Number.POSITIVE_INFINITY;
  const u = new Float64Array(n + 1);
  const v = new Float64Array(n + 1);
  const p = new Int32Array(n + 1); // p[j]: row matched to column j (1-based, 0 = none)
  const way = new Int32Array(n + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Float64Array(n + 1).fill(INF);
    const used = new Uint8Array(n + 1);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = INF;
      let j1 = 0;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = cost[i0 - 1]![j - 1]! - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]!]! += delta;
          v[j]! -= delta;
        } else minv[j]! -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0);
  }
  const result = new Array<number>(n);
  for (let j = 1; j <= n; j++) result[p[j]! - 1] = j - 1;
  return result;
}

/**
 * For new centroids `next` and previous ones `prev` (k x d each, same space), the position each
 * new centroid takes: order[newIndex] = previous index it continues.
 */
export function matchCentroids(next: Float64Array, prev: Float64Array, k: number, d: number): number[] {
  const cost = Array.from({ length: k }, (_, a) =>
    Array.from({ length: k }, (_, b) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += (next[a * d + j]! - prev[b * d + j]!) ** 2;
      return s;
    }),
  );
  return hungarian(cost);
}
