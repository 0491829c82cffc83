import { countRows, loadTrainingData } from '../data/load.ts';
import { transform, type FeatureSpec } from '../features/prepare.ts';
import { MiniBatchKmeans, StreamedEvaluation, type StreamedMetrics } from '../models/kmeans/minibatch.ts';
import type { KmeansModel } from '../models/kmeans/train.ts';
import { UserError } from '../util/errors.ts';
import type { JobContext } from './context.ts';

// The streaming mode of the k-means job (option batch_size): the feature preparation and the
// initial model come from a uniform sample held in memory (the usual pipeline), then two
// passes stream every row by binary COPY in batches of batch_size rows: one moves the
// centroids (mini-batch k-means), one measures the final model on every row. Peak memory is the
// sample plus one batch, so the training set may be far larger than --max-memory.

/** Rows in the in-memory sample: enough for k-means++ and the metrics that need all pairs. */
export const STREAM_SAMPLE_ROWS = 100_000;

export interface StreamPlan {
  totalRows: number;
  /** The sample's condition over the query's rows (none when every row fits the sample). */
  where?: string;
  share?: number; // of the rows the sample keeps
}

export async function planStreaming(ctx: JobContext, sampleRows: number, statementTimeoutMs: number): Promise<StreamPlan> {
  const totalRows = await countRows({ source: ctx.source, statementTimeoutMs });
  if (totalRows === 0) throw new UserError('the training query returned no rows');
  const target = sampleRows;
  if (totalRows <= target) return { totalRows };
  return { totalRows, where: `random() < ${target / totalRows}`, share: target / totalRows };
}

/**
 * Moves the model's centroids by one mini-batch pass over every row, then measures them on
 * every row. The centroids are updated in place.
 */
export async function refineByStreaming(
  ctx: JobContext,
  o: { spec: FeatureSpec; exclude: string[]; batchSize: number; statementTimeoutMs: number; model: KmeansModel },
): Promise<StreamedMetrics & { seconds: number }> {
  const started = performance.now();
  const { model, spec } = o;
  const d = spec.dims;
  const stream = async (phase: string, onBatch: (X: Float64Array, n: number) => void) => {
    await ctx.checkpoint({ phase, rows_per_batch: o.batchSize });
    await loadTrainingData({
      source: ctx.source,
      statementTimeoutMs: o.statementTimeoutMs,
      exclude: o.exclude,
      batch: {
        rows: o.batchSize,
        onBatch: (table) => {
          const X = transform(table, spec);
          for (let i = 0; i < X.length; i++) {
            if (!Number.isFinite(X[i]!)) {
              // Only a numeric input can be NaN or infinite (categories become 0/1).
              const f = spec.features.find((x) => x.offset === i % d)!;
              throw new UserError(`column "${f.name}" has a NaN or infinite value in the streamed rows; filter it out (WHERE "${f.name}" <> 'NaN' AND "${f.name}" NOT IN ('Infinity', '-Infinity'))`);
            }
          }
          onBatch(X, table.rows);
        },
      },
    });
  };
  const mb = new MiniBatchKmeans(model.centroids, model.k, d, model.space.distance);
  await stream('stream', (X, n) => mb.update(X, n));
  const ev = new StreamedEvaluation(model.centroids, model.k, d, model.space.distance);
  await stream('evaluate_all_rows', (X, n) => ev.add(X, n));
  return { ...ev.metrics(), seconds: (performance.now() - started) / 1000 };
}
