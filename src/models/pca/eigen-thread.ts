import { parentPort, workerData } from 'node:worker_threads';
import { symmetricEigen } from './symmetric-eigen.ts';

// eigen.ts's decomposition off the main thread: the matrix in, values and vectors back (moved, not copied).
const { C, d } = workerData as { C: Float64Array; d: number };
const r = symmetricEigen(C, d);
parentPort!.postMessage(r, [r.values.buffer as ArrayBuffer, r.vectors.buffer as ArrayBuffer]);
