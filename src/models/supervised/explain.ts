import type { FeatureSpec } from '../../features/prepare.ts';
import type { SupervisedArtifact } from './artifact.ts';
import type { Ensemble } from '../trees/ensemble.ts';
import { ensembleShap } from '../trees/shap.ts';
import type { Target } from './target.ts';
import { pacer } from '../../util/yield.ts';

// What a trained supervised model is explained by, computed in the sidecar: linear models'
// importance and attribution baselines, and every model's global explanation.

/**
 * Linear models: the standard deviation, over the training rows, of each input column's
 * contribution to the margin (summed over classes): |coefficient| of a standardized numeric
 * column, and for a category the spread of its levels' weights, independent of which level the
 * intercept absorbed.
 */
export function linearImportance(spec: FeatureSpec, X: Float64Array, n: number, weights: number[][]): SupervisedArtifact['importance'] {
  const d = spec.dims;
  const F = spec.features.length;
  const offset = Int32Array.from(spec.features, (f) => f.offset);
  const size = Int32Array.from(spec.features, (f) => (f.kind === 'categorical' && f.encoding !== 'label' ? f.categories.length : 1));
  const total = new Float64Array(F);
  const s = new Float64Array(F);
  const ss = new Float64Array(F);
  for (const wk of weights) {
    const w = Float64Array.from(wk);
    s.fill(0);
    ss.fill(0);
    // One pass over the rows in memory order (a pass per feature strode over the matrix: 10x slower).
    for (let i = 0, at = 0; i < n; i++, at += d) {
      for (let f = 0; f < F; f++) {
        let c = 0;
        for (let j = offset[f]!, end = j + size[f]!; j < end; j++) c += w[j]! * X[at + j]!;
        s[f] += c;
        ss[f] += c * c;
      }
    }
    for (let f = 0; f < F; f++) total[f] += Math.sqrt(Math.max(0, ss[f]! / n - (s[f]! / n) ** 2));
  }
  return spec.features.map((f, j) => ({ feature: f.name, weight: null, gain: null, cover: null, importance: total[j]! }));
}

/**
 * Linear models: each feature's mean contribution to each margin over the training rows, and
 * the margin of that average row (the baseline of the exact attributions of ml_explain_predict:
 * attribution = contribution - mean contribution, so they sum to margin - baseline).
 */
export function linearExplanation(spec: FeatureSpec, X: Float64Array, n: number, lin: { weights: number[][]; intercepts: number[] }): SupervisedArtifact['explanation'] {
  const d = spec.dims;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += X[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j] = mean[j]! / n;
  const expected = lin.weights.map((w) =>
    spec.features.map((f) => {
      const size = f.kind === 'categorical' && f.encoding !== 'label' ? f.categories.length : 1;
      let e = 0;
      for (let j = 0; j < size; j++) e += w[f.offset + j]! * mean[f.offset + j]!;
      return e;
    }),
  );
  return { baseline: lin.intercepts.map((b, k) => expected[k]!.reduce((s, e) => s + e, b)), expected };
}

/** The input column (1-based) of every model-space dimension. */
export function dimFeatures(spec: FeatureSpec): number[] {
  const out = new Array<number>(spec.dims);
  spec.features.forEach((f, i) => {
    const size = f.kind === 'categorical' && f.encoding !== 'label' ? f.categories.length : 1;
    for (let j = 0; j < size; j++) out[f.offset + j] = i + 1;
  });
  return out;
}

/**
 * ML.GLOBAL_EXPLAIN, at training time: each input column's mean |attribution| over (a regular
 * sample of) the evaluation rows; per class too for multiclass models. TreeSHAP costs about a
 * microsecond per tree node per row, so tree models use 500,000 / nodes rows (at least 30).
 */
export async function globalExplanation(
  t: { spec: FeatureSpec; ensemble?: Ensemble; linear?: { weights: number[][] }; explanation?: SupervisedArtifact['explanation'] },
  X: Float64Array,
  target: Target,
  rows: Uint32Array,
): Promise<{ class?: string; feature: string; attribution: number }[]> {
  const spec = t.spec;
  const d = spec.dims;
  const F = spec.features.length;
  const dimFeature = dimFeatures(spec);
  const nodes = t.ensemble ? t.ensemble.trees.reduce((s, tr) => s + tr.feature.length, 0) : 0;
  const cap = t.ensemble ? Math.max(30, Math.min(1000, Math.floor(500_000 / Math.max(1, nodes)))) : 2000;
  const stride = Math.max(1, Math.ceil(rows.length / cap));
  const K = target.K;
  const sums = Array.from({ length: K }, () => new Float64Array(F));
  let count = 0;
  const pace = pacer(); // up to 500,000 node-rows of TreeSHAP: the event loop runs in between
  for (let r = 0; r < rows.length; r += stride) {
    await pace();
    const i = rows[r]!;
    count++;
    for (let k = 0; k < K; k++) {
      const per = new Float64Array(F);
      if (t.ensemble) {
        const phi = ensembleShap(t.ensemble, X, i * d, d, k);
        for (let j = 0; j < d; j++) per[dimFeature[j]! - 1] += phi[j]!;
      } else {
        const w = t.linear!.weights[k]!;
        for (let j = 0; j < d; j++) per[dimFeature[j]! - 1] += w[j]! * X[i * d + j]!;
        for (let f = 0; f < F; f++) per[f] -= t.explanation!.expected![k]![f]!;
      }
      for (let f = 0; f < F; f++) sums[k]![f] += Math.abs(per[f]!);
    }
  }
  const out: { class?: string; feature: string; attribution: number }[] = [];
  spec.features.forEach((f, j) => {
    let total = 0;
    for (let k = 0; k < K; k++) total += sums[k]![j]! / count;
    out.push({ feature: f.name, attribution: total / K });
  });
  if (target.problem === 'multiclass') {
    target.classes!.forEach((c, k) => spec.features.forEach((f, j) => out.push({ class: c, feature: f.name, attribution: sums[k]![j]! / count })));
  }
  return out;
}
