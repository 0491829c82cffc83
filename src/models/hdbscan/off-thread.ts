import { Worker } from 'node:worker_threads';
import { bundledEntry } from '../../util/bundle.ts';
import { UserError } from '../../util/errors.ts';
import { makeSpace } from '../kmeans/geometry.ts';
import type { DensityMetrics } from '../../metrics/density.ts';
import type { HdbscanModel, HdbscanOptions } from './train.ts';

// HDBSCAN on a worker thread: its core distances and spanning tree held the main thread for
// seconds (docs/performance.md, event-loop stalls), and with it the heartbeats, progress,
// cancellation and every other job. The checkpoint runs at each phase and twice a second
// between, so a cancel or a shutdown stops the thread within half a second.

export const hdbscanThreadEntry = (): URL => bundledEntry(new URL('./thread.ts', import.meta.url));
/** The second thread of the tree passes (spatial.ts), started by the HDBSCAN thread. */
export const hdbscanHelperEntry = (): URL => bundledEntry(new URL('./helper-thread.ts', import.meta.url));
const CHECK_EVERY_MS = 500;

type Message =
  | { type: 'phase'; phase: string }
  | { type: 'done'; model: Omit<HdbscanModel, 'space'>; metrics: DensityMetrics }
  | { type: 'error'; message: string; user: boolean };

/** The fit and its metrics (src/metrics/density.ts; `seed` draws their samples). */
export async function trainHdbscanOffThread(X: Float64Array, n: number, d: number, o: HdbscanOptions, seed: number): Promise<HdbscanModel & { metrics: DensityMetrics }> {
  let shared = X;
  if (!(X.buffer instanceof SharedArrayBuffer)) {
    shared = new Float64Array(new SharedArrayBuffer(n * d * 8));
    shared.set(X.subarray(0, n * d));
  }
  const { checkpoint, ...options } = o;
  const worker = new Worker(hdbscanThreadEntry(), {
    workerData: { buffer: shared.buffer, byteOffset: shared.byteOffset, n, d, options: { ...options, helperEntry: hdbscanHelperEntry().href }, seed },
  });
  let phase = 'core distances';
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<HdbscanModel & { metrics: DensityMetrics }>((resolve, reject) => {
      const check = () => void checkpoint?.(phase).catch(reject);
      timer = setInterval(check, CHECK_EVERY_MS);
      worker.on('message', (m: Message) => {
        if (m.type === 'phase') {
          phase = m.phase;
          check();
        } else if (m.type === 'done') resolve({ ...m.model, metrics: m.metrics, space: makeSpace(X, n, d, o.distance) });
        else reject(m.user ? new UserError(m.message) : new Error(m.message));
      });
      worker.on('error', reject);
      worker.on('exit', (code) => reject(new Error(`the HDBSCAN thread stopped (exit code ${code})`)));
    });
  } finally {
    clearInterval(timer);
    await worker.terminate();
  }
}
