import { makeSpace, pointDist2, type DistanceType, type Space } from './geometry.ts';
import { assign } from './lloyd.ts';

// Streaming k-means, for training sets larger than the sidecar's memory (option batch_size).
// The model is first fitted on a uniform sample held in memory; then the rows stream past in
// batches of batch_size: each batch is assigned to the nearest centroids and every centroid
// moves towards the mean of its batch members with a per-centroid rate of
// members / (members seen so far) (Sculley 2010, "Web-scale k-means clustering"), so that
// after one pass each centroid is the running mean of every row it was given. A last pass
// measures the objective and the cluster metrics on every row against the final centroids.
// Memory: the sample plus one batch, whatever the number of rows.

export class MiniBatchKmeans {
  private readonly seen: Float64Array;
  private readonly sums: Float64Array;
  private readonly members: Float64Array;
  private labels = new Int32Array(0);
  private dist2 = new Float64Array(0);
  rows = 0;
  loss = 0; // sum of squared distances at assignment time, over the rows of this pass

  constructor(
    readonly centroids: Float64Array, // k x d, updated in place
    readonly k: number,
    readonly d: number,
    readonly distance: DistanceType,
  ) {
    this.seen = new Float64Array(k);
    this.sums = new Float64Array(k * d);
    this.members = new Float64Array(k);
  }

  /** One batch (model space, row-major n x d). */
  update(X: Float64Array, n: number): void {
    const { k, d, centroids: C } = this;
    const s = makeSpace(X, n, d, this.distance);
    if (this.labels.length < n) {
      this.labels = new Int32Array(n);
      this.dist2 = new Float64Array(n);
    }
    const labels = this.labels.subarray(0, n);
    const dist2 = this.dist2.subarray(0, n);
    assign(s, C, k, labels, dist2);
    this.sums.fill(0);
    this.members.fill(0);
    for (let i = 0, p = 0; i < n; i++, p += d) {
      const c = labels[i]!;
      this.members[c]!++;
      this.loss += dist2[i]!;
      for (let j = 0, q = c * d; j < d; j++, q++) this.sums[q]! += s.X[p + j]!;
    }
    for (let c = 0; c < k; c++) {
      const m = this.members[c]!;
      if (m === 0) continue;
      this.seen[c]! += m;
      const rate = m / this.seen[c]!;
      for (let j = 0, q = c * d; j < d; j++, q++) C[q]! += rate * (this.sums[q]! / m - C[q]!);
    }
    this.rows += n;
  }
}

export interface StreamedMetrics {
  rows: number;
  mean_squared_distance: number;
  davies_bouldin_index: number | null;
  calinski_harabasz_score: number | null;
  cluster_sizes: number[];
}

/** Exact metrics of fixed centroids over rows that stream past in batches. */
export class StreamedEvaluation {
  private readonly count: Float64Array;
  private readonly spread: Float64Array; // sum of distances to the centroid
  private readonly sum: Float64Array; // k x d member sums
  private readonly sumSq: Float64Array; // sum of |x|^2 per cluster
  private dist2Total = 0;
  private rows = 0;

  constructor(
    readonly centroids: Float64Array,
    readonly k: number,
    readonly d: number,
    readonly distance: DistanceType,
  ) {
    this.count = new Float64Array(k);
    this.spread = new Float64Array(k);
    this.sum = new Float64Array(k * d);
    this.sumSq = new Float64Array(k);
  }

  add(X: Float64Array, n: number): void {
    const { k, d } = this;
    const s: Space = makeSpace(X, n, d, this.distance);
    const labels = new Int32Array(n);
    const dist2 = new Float64Array(n);
    assign(s, this.centroids, k, labels, dist2);
    for (let i = 0, p = 0; i < n; i++, p += d) {
      const c = labels[i]!;
      this.count[c]!++;
      this.spread[c]! += Math.sqrt(dist2[i]!);
      this.dist2Total += dist2[i]!;
      let sq = 0;
      for (let j = 0, q = c * d; j < d; j++, q++) {
        const x = s.X[p + j]!;
        this.sum[q]! += x;
        sq += x * x;
      }
      this.sumSq[c]! += sq;
    }
    this.rows += n;
  }

  /**
   * Davies-Bouldin with the centroids and each cluster's mean distance to its centroid
   * (BigQuery ML's definition); Calinski-Harabasz with the members' means, as scikit-learn.
   */
  metrics(): StreamedMetrics {
    const { k, d, rows: n } = this;
    const present: number[] = [];
    for (let c = 0; c < k; c++) if (this.count[c]! > 0) present.push(c);
    let db: number | null = null;
    if (present.length >= 2) {
      let total = 0;
      for (const a of present) {
        let worst = 0;
        for (const b of present) {
          if (a === b) continue;
          const m = Math.sqrt(pointDist2(this.distance, this.centroids, a * d, this.centroids, b * d, d));
          const r = m > 0 ? (this.spread[a]! / this.count[a]! + this.spread[b]! / this.count[b]!) / m : 0;
          if (r > worst) worst = r;
        }
        total += worst;
      }
      db = total / present.length;
    }
    let ch: number | null = null;
    if (present.length >= 2 && n > present.length) {
      const overall = new Float64Array(d);
      for (const c of present) for (let j = 0; j < d; j++) overall[j]! += this.sum[c * d + j]!;
      for (let j = 0; j < d; j++) overall[j]! /= n;
      let between = 0;
      let within = 0;
      for (const c of present) {
        let meanSq = 0;
        let gap = 0;
        for (let j = 0; j < d; j++) {
          const mu = this.sum[c * d + j]! / this.count[c]!;
          meanSq += mu * mu;
          gap += (mu - overall[j]!) ** 2;
        }
        between += this.count[c]! * gap;
        within += this.sumSq[c]! - this.count[c]! * meanSq;
      }
      ch = within <= 0 ? 1 : (between * (n - present.length)) / (within * (present.length - 1));
    }
    return {
      rows: n,
      mean_squared_distance: n ? this.dist2Total / n : 0,
      davies_bouldin_index: db,
      calinski_harabasz_score: ch,
      cluster_sizes: Array.from(this.count),
    };
  }
}
