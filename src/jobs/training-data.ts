import { loadTrainingData, type LoadedData } from '../data/load.ts';
import { fitFeatures, transform, type CategoryOptions, type FeatureSpec, type FeatureStats } from '../features/prepare.ts';
import { UserError } from '../util/errors.ts';
export { loadModelRow, type ModelRow } from '../store/models.ts';
import type { JobContext } from './context.ts';

// What every training job does first: read its model row, load the query's rows under the
// requester's role, fit (or reuse) the feature preparation and build the model-space matrix.

export interface Prepared {
  data: LoadedData;
  spec: FeatureSpec;
  stats: FeatureStats[];
  X: Float64Array;
  n: number;
  d: number;
}

export async function prepareTrainingData(
  ctx: JobContext,
  o: {
    exclude: string[];
    standardize: boolean;
    categories?: CategoryOptions; // not needed with reuse
    deadline?: number;
    maxRuntimeSeconds?: number | null;
    boolColumn?: string;
    keep?: string[];
    reuse?: { spec: FeatureSpec; version: number }; // warm start: the previous version's preparation
    sample?: { where: string; seed: number; share: number }; // streaming mode: a uniform sample of the rows
    rowMajor?: boolean; // see LoadRequest.rowMajor
    /**
     * In-database training: the numeric columns' mean and standard deviation over every row,
     * given the sample's; they replace the sample's in the preparation.
     */
    columnStatistics?: (sample: Map<string, { mean: number; scale: number }>) => Promise<Map<string, { mean: number; std: number }>>;
  },
): Promise<Prepared> {
  const data = await loadTrainingData({
    source: ctx.source,
    statementTimeoutMs: o.deadline === undefined ? ctx.statementTimeoutMs : Math.min(ctx.statementTimeoutMs, o.deadline - Date.now()),
    maxBytes: ctx.maxBytes,
    onRows: (rows) => ctx.report({ phase: 'load', rows, rows_expected: ctx.source.estimatedRows }),
    exclude: o.exclude,
    boolColumn: o.boolColumn,
    keep: o.keep,
    where: o.sample?.where,
    randomSeed: o.sample?.seed,
    sampleShare: o.sample?.share,
    rowMajor: o.rowMajor,
  });
  const n = data.table.rows;
  if (n === 0) throw new UserError('the training query returned no rows');
  if (o.deadline !== undefined && Date.now() > o.deadline) {
    throw new UserError(`"max_runtime" (${o.maxRuntimeSeconds} s) was reached while reading the training data, before anything was trained; raise "max_runtime"`);
  }
  await ctx.checkpoint({ phase: 'prepare', rows: n });
  let spec: FeatureSpec;
  let stats: FeatureStats[];
  if (o.reuse) {
    const fitted = fitFeatures(data.table, { standardize: o.standardize, maxCategories: Infinity });
    stats = fitted.stats;
    const names = (x: FeatureSpec) => x.features.map((f) => `${f.name}:${f.kind}`).join(', ');
    if (names(fitted.spec) !== names(o.reuse.spec)) {
      throw new UserError(
        `"warm_start" needs the same feature columns as version ${o.reuse.version} (${names(o.reuse.spec)}); the query gives ${names(fitted.spec)}`,
      );
    }
    spec = o.reuse.spec;
  } else {
    ({ spec, stats } = fitFeatures(data.table, { standardize: o.standardize, ...(o.categories ?? {}) }));
  }
  if (o.columnStatistics) {
    const numeric = spec.features.filter((f) => f.kind === 'numeric');
    const exact = await o.columnStatistics(new Map(numeric.map((f) => [f.name, { mean: f.mean, scale: f.scale }])));
    for (const f of numeric) {
      const e = exact.get(f.name);
      if (!e) continue;
      f.mean = e.mean;
      f.scale = spec.standardize && e.std > 0 ? e.std : 1;
      const st = stats.find((x) => x.input === f.name);
      if (st) {
        st.mean = e.mean;
        st.stddev = e.std;
      }
    }
  }
  assertSomethingVaries(stats);
  const X = transform(data.table, spec);
  // The column arrays are not needed once the model-space matrix exists: let them go.
  data.table.columns = [];
  return { data, spec, stats, X, n, d: spec.dims };
}

/** Rows that are all the same point give k identical centroids and undefined metrics: say so. */
function assertSomethingVaries(stats: FeatureStats[]): void {
  const used = stats.filter((s) => s.type !== 'dropped');
  const constant = (s: FeatureStats) =>
    s.type === 'numeric' ? s.stddev === 0 : s.kept_categories === 0 || (s.category_count ?? 0) + (s.null_count > 0 ? 1 : 0) <= 1;
  if (used.length > 0 && used.every(constant)) {
    throw new UserError(
      `every feature column is constant (${used.map((s) => s.input).join(', ')}): every row is the same point and there is nothing to separate into clusters; add a column whose values vary, or check the training query's WHERE clause`,
    );
  }
}

/** The output_table option as [schema, table]; unqualified names go to the API schema. */
export function outputTableName(options: Record<string, unknown>, apiSchema: string): [string, string] | null {
  const v = options.output_table;
  if (typeof v !== 'string') return null;
  const parts = v.split('.');
  return parts.length === 2 ? [parts[0]!, parts[1]!] : [apiSchema, parts[0]!];
}
