import { parentPort, workerData } from 'node:worker_threads';
import type { Space } from './geometry.ts';
import { runRestart, type RestartSettings, type RestartTask } from './restarts.ts';

// A worker thread: the model-space matrix arrives once, in shared memory (no copy); then
// restart tasks arrive one message at a time, and each iteration and result goes back.
interface Init {
  buffer: SharedArrayBuffer;
  n: number;
  d: number;
  settings: RestartSettings;
}

const init = workerData as Init;
const space: Space = { X: new Float64Array(init.buffer), n: init.n, d: init.d, distance: init.settings.distance };
const port = parentPort!;

port.on('message', async (task: RestartTask) => {
  try {
    const r = await runRestart(space, task, init.settings, (info) => port.postMessage({ type: 'iteration', task: task.index, info }));
    port.postMessage({ type: 'done', task: task.index, result: r }, [r.centroids.buffer, r.labels.buffer, r.dist2.buffer] as ArrayBuffer[]);
  } catch (err) {
    port.postMessage({ type: 'error', task: task.index, message: err instanceof Error ? err.message : String(err) });
  }
});
