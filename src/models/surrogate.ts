import type { FeatureSpec } from '../features/prepare.ts';
import { binMatrix } from './trees/bins.ts';
import { splitImportance, trainEnsemble } from './trees/ensemble.ts';
import { marginsPerRow, outputs, type Target } from './supervised/target.ts';
import { yieldToEventLoop } from '../util/yield.ts';

// Why is a row in segment 3? SQL-inf's EXPLAIN(PREDICT(cluster_id)): a boosted-tree classifier
// learns the segment from the model-space features; its split gains say which input columns
// decide membership, and its accuracy on rows it did not learn from (fidelity) says how far to
// trust that. At most 10,000 rows learn and 2,500 others measure fidelity (20,000 and 5,000
// cost ~0.2 s a model with k = 8: 20 rounds of one tree per segment).

const LEARN = 10_000;
const CHECK = 2_500;

export interface ImportanceRow {
  feature: string;
  weight: number | null;
  gain: number | null;
  cover: number | null;
  importance: number;
}

export async function surrogateImportance(
  X: Float64Array,
  n: number,
  spec: FeatureSpec,
  labels: Int32Array, // 0-based segment, -1 = noise
  seed: number,
): Promise<{ importance: ImportanceRow[]; fidelity: number }> {
  const d = spec.dims;
  // Rows on a regular stride: every `step`-th row learns, the ones in between check.
  const step = Math.max(1, Math.floor(n / (LEARN + CHECK)));
  const picked: number[] = [];
  for (let i = 0; i < n && picked.length < LEARN + CHECK; i += step) picked.push(i);
  const m = picked.length;
  const Xs = new Float64Array(m * d);
  picked.forEach((i, r) => Xs.set(X.subarray(i * d, i * d + d), r * d));
  const segments = [...new Set(picked.map((i) => labels[i]!))].sort((a, b) => a - b);
  const index = new Map(segments.map((s, c) => [s, c]));
  const y = Float64Array.from(picked, (i) => index.get(labels[i]!)!);
  const check: number[] = [];
  const learn: number[] = [];
  for (let r = 0; r < m; r++) (m > 50 && r % 5 === 4 ? check : learn).push(r);
  const classes = segments.map(String);
  const problem = classes.length === 2 ? 'binary' : 'multiclass';
  const target: Target = { problem, y, w: new Float64Array(m).fill(1), classes, K: marginsPerRow(problem, classes.length) };
  const importance = spec.features.map((f): ImportanceRow => ({ feature: f.name, weight: 0, gain: 0, cover: 0, importance: 0 }));
  if (classes.length < 2) return { importance, fidelity: 1 };
  const learnRows = Uint32Array.from(learn);
  const rows = check.length ? check : learn;
  // The checking rows are scored as an evaluation set (early stopping is off: it does not steer).
  const res = await trainEnsemble(
    binMatrix(Xs, m, d, learnRows, seed),
    Xs,
    target,
    learnRows,
    check.length ? Uint32Array.from(check) : null,
    { rounds: 20, numParallelTree: 1, maxDepth: 4, learnRate: 0.3, l1: 0, l2: 1, minChildWeight: 1, minSplitLoss: 0, subsample: 1, colsampleBynode: 1, earlyStop: false, minRelProgress: 0, patience: 10, seed },
    // between rounds, the event loop runs (heartbeats, cancellation, other jobs)
    yieldToEventLoop,
  );
  const F = new Float64Array(rows.length * target.K);
  rows.forEach((r, j) => F.set(res.margins.subarray(r * target.K, (r + 1) * target.K), j * target.K));
  const P = outputs(problem, F, rows.length, classes.length);
  let right = 0;
  rows.forEach((r, j) => {
    let best = 0;
    for (let c = 1; c < classes.length; c++) if (P[j * classes.length + c]! > P[j * classes.length + best]!) best = c;
    if (best === y[r]) right++;
  });
  const imp = splitImportance(res.model, d);
  spec.features.forEach((f, i) => {
    const size = f.kind === 'categorical' && f.encoding !== 'label' ? f.categories.length : 1;
    let w = 0;
    let g = 0;
    let c = 0;
    for (let j = 0; j < size; j++) {
      w += imp.weight[f.offset + j]!;
      g += imp.gain[f.offset + j]!;
      c += imp.cover[f.offset + j]!;
    }
    importance[i] = { feature: f.name, weight: w, gain: w ? g / w : 0, cover: w ? c / w : 0, importance: g };
  });
  return { importance, fidelity: right / rows.length };
}
