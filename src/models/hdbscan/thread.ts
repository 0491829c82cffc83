import { parentPort, workerData } from 'node:worker_threads';
import { UserError } from '../../util/errors.ts';
import { densityMetrics } from '../../metrics/density.ts';
import { trainHdbscan, type HdbscanOptions } from './train.ts';

// A worker thread for one HDBSCAN fit and its metrics (silhouette and DBCV are quadratic in
// their samples): the model-space matrix arrives in shared memory (no copy); each phase, then
// the model and the metrics go back. The model's space is rebuilt by the caller from the same
// matrix.
interface Init {
  buffer: SharedArrayBuffer;
  byteOffset: number;
  n: number;
  d: number;
  options: Omit<HdbscanOptions, 'checkpoint'>;
  seed: number;
}

const { buffer, byteOffset, n, d, options, seed } = workerData as Init;
const port = parentPort!;
try {
  const X = new Float64Array(buffer, byteOffset, n * d);
  const m = await trainHdbscan(X, n, d, { ...options, checkpoint: async (phase) => port.postMessage({ type: 'phase', phase }) });
  port.postMessage({ type: 'phase', phase: 'evaluate' });
  const metrics = densityMetrics(m.space, X, n, d, m.labels, m.k, seed);
  const { space: _space, ...model } = m;
  port.postMessage({ type: 'done', model, metrics });
} catch (err) {
  port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err), user: err instanceof UserError });
}
