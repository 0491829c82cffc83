import { parentPort, workerData } from 'node:worker_threads';
import { helperLoop, type SharedState } from './spatial.ts';

// The second thread of HDBSCAN's tree passes (spatial.ts): same shared arrays, same chunks.
helperLoop(workerData as SharedState, parentPort!);
