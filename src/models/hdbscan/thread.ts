import { parentPort, workerData } from 'node:worker_threads';
import { UserError } from '../../util/errors.ts';
import { trainHdbscan, type HdbscanOptions } from './train.ts';

// A worker thread for one HDBSCAN fit: the model-space matrix arrives in shared memory (no
// copy); each phase and then the model go back. The model's space is rebuilt by the caller
// from the same matrix.
interface Init {
  buffer: SharedArrayBuffer;
  byteOffset: number;
  n: number;
  d: number;
  options: Omit<HdbscanOptions, 'checkpoint'>;
}

const { buffer, byteOffset, n, d, options } = workerData as Init;
const port = parentPort!;
try {
  const X = new Float64Array(buffer, byteOffset, n * d);
  const m = await trainHdbscan(X, n, d, { ...options, checkpoint: async (phase) => port.postMessage({ type: 'phase', phase }) });
  const { space: _space, ...model } = m;
  port.postMessage({ type: 'done', model });
} catch (err) {
  port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err), user: err instanceof UserError });
}
