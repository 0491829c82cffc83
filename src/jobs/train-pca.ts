import { categoryOptions } from '../features/prepare.ts';
import { fitPca } from '../models/pca/train.ts';
import { writePcaModel } from '../store/write-pca.ts';
import { storeContext, type JobContext } from './context.ts';
import { prepareTrainingData, type ModelRow } from './training-data.ts';

// PCA as a training job (BigQuery ML's model_type PCA): the same loading and feature
// preparation as k-means (numeric columns standardized unless "scale_features": false,
// categories one-hot), the components of the model-space matrix, written back with the
// projection function.

export async function trainPcaJob(ctx: JobContext, model: ModelRow): Promise<void> {
  const o = model.options;
  const num = (k: string) => (typeof o[k] === 'number' ? (o[k] as number) : null);
  const { data, spec, stats, X, n, d } = await prepareTrainingData(ctx, {
    exclude: Array.isArray(o.exclude) ? (o.exclude as string[]) : [],
    standardize: o.scale_features !== false,
    categories: categoryOptions(o),
  });
  await ctx.checkpoint({ phase: 'train', rows: n, dims: d });
  const started = performance.now();
  const m = await fitPca(X, n, d, { components: num('num_principal_components'), varianceRatio: num('pca_explained_variance_ratio') });
  const total = m.eigenvalues.reduce((s, v) => s + v, 0);
  const ratio = Array.from(m.eigenvalues, (v) => (total > 0 ? v / total : 0));
  const components = Array.from({ length: m.k }, (_, c) => Array.from(m.components.subarray(c * d, c * d + d)));
  await ctx.checkpoint({ phase: 'write' });
  await writePcaModel(storeContext(ctx), {
    modelId: model.id,
    modelName: model.model_name,
    version: model.version,
    owner: model.owner,
    functionName: model.function_name,
    compiled: { spec, center: Array.from(m.center), components },
    artifact: {
      model_type: 'pca', features: spec.features, dims: d, standardize: spec.standardize,
      center: Array.from(m.center), components, eigenvalues: Array.from(m.eigenvalues), explained_variance_ratio: ratio,
    },
    metrics: {
      rows: n, num_principal_components: m.k, load_seconds: data.seconds, train_seconds: (performance.now() - started) / 1000,
      total_explained_variance_ratio: ratio.slice(0, m.k).reduce((s, v) => s + v, 0),
    },
    options: o,
    featureStats: stats,
    finalProgress: { phase: 'ready', components: m.k },
  });
}
