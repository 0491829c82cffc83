import { Worker } from 'node:worker_threads';
import { bundledEntry } from '../../util/bundle.ts';
import { symmetricEigen, type Eigen } from './symmetric-eigen.ts';

// The eigen-decomposition of a symmetric d x d matrix (symmetric-eigen.ts). It is one call of O(d^3)
// work (d = 400: ~0.75 s on this machine), so from EIGEN_THREAD_DIMS up it runs on a worker
// thread and the sidecar's event loop keeps serving heartbeats and other jobs.

export const EIGEN_THREAD_DIMS = 96;
export const eigenThreadEntry = (): URL => bundledEntry(new URL('./eigen-thread.ts', import.meta.url));

export async function eigen(C: Float64Array, d: number): Promise<Eigen> {
  if (d < EIGEN_THREAD_DIMS) return symmetricEigen(C, d);
  const worker = new Worker(eigenThreadEntry(), { workerData: { C, d } });
  try {
    return await new Promise<Eigen>((resolve, reject) => {
      worker.once('message', (m: Eigen) => resolve(m));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the eigen-decomposition thread stopped (exit code ${code})`)));
    });
  } finally {
    await worker.terminate();
  }
}
