import type { Table } from '../data/columns.ts';
import { fitFeatures, transform } from '../features/prepare.ts';
import { Random } from '../util/random.ts';
import { ensembleParams } from './supervised/options.ts';
import type { Target } from './supervised/target.ts';
import { binMatrix } from './trees/bins.ts';
import { trainEnsemble } from './trees/ensemble.ts';
import { ensembleShap } from './trees/shap.ts';

// V8 optimises a function only after it has run a while, so a fresh sidecar's first boosted-tree
// job ran its preparation and rounds in slower code than the next job. A sidecar trains on a few thousand synthetic rows before it takes jobs.

/** Runs feature preparation, binning, boosting (binary and regression) and TreeSHAP on synthetic rows. */
export async function warmUp(): Promise<void> {
  const n = 3000;
  const rng = new Random(1);
  const numeric = Array.from({ length: 6 }, (_, j) => ({
    kind: 'numeric' as const,
    name: `x${j}`,
    values: Float64Array.from({ length: n }, () => rng.next() * 4 - 2),
    nulls: new Uint8Array(n),
  }));
  const table: Table = {
    rows: n,
    columns: [
      ...numeric,
      { kind: 'categorical', name: 'c', codes: Int32Array.from({ length: n }, () => rng.int(4)), categories: ['a', 'b', 'c', 'd'] },
    ],
  };
  const { spec } = fitFeatures(table, { standardize: false, maxCategories: 100, categoryEncoding: 'label' });
  const X = transform(table, spec);
  const d = spec.dims;
  const train = Uint32Array.from({ length: n - 500 }, (_, i) => i);
  const evalRows = Uint32Array.from({ length: 500 }, (_, i) => n - 500 + i);
  const binned = binMatrix(X, n, d, train, 1);
  const signal = (i: number) => X[i * d]! - X[i * d + 1]! * X[i * d + 2]! + Math.sin(2 * X[i * d + 3]!);
  const targets: Target[] = [
    { problem: 'binary', K: 1, y: Float64Array.from({ length: n }, (_, i) => (rng.next() < 1 / (1 + Math.exp(-signal(i))) ? 1 : 0)), w: new Float64Array(n).fill(1), classes: ['f', 't'] },
    { problem: 'regression', K: 1, y: Float64Array.from({ length: n }, (_, i) => signal(i) + rng.next()), w: new Float64Array(n).fill(1), classes: null },
  ];
  for (const target of targets) {
    const params = ensembleParams('boosted', { max_iterations: 40, early_stop: false }, 1);
    const { model } = await trainEnsemble(binned, X, target, train, evalRows, params, async () => undefined);
    for (let i = 0; i < 5; i++) ensembleShap(model, X, i * d, d, 0);
  }
}
