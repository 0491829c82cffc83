import { parentPort, workerData } from 'node:worker_threads';
import type { Binned } from './bins.ts';
import { growForestShare, type ForestTask } from './forest-share.ts';

// A worker thread growing its share of a forest's trees: the binned matrix and the gradient
// pairs arrive in shared memory (no copy); the trees and their summed leaf values go back.
const { data, task, first, step } = workerData as { data: Binned; task: ForestTask; first: number; step: number };
try {
  const share = growForestShare(data, task, first, step);
  parentPort!.postMessage(share, [share.delta.buffer as ArrayBuffer]);
} catch (err) {
  parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
}
