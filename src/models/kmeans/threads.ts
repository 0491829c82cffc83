import { availableParallelism } from 'node:os';
import { bundledEntry } from '../../util/bundle.ts';
import { Worker } from 'node:worker_threads';
import { UserError } from '../../util/errors.ts';
import type { Space } from './geometry.ts';
import type { IterationInfo, LloydResult } from './lloyd.ts';
import { runRestart, type RestartSettings, type RestartTask } from './restarts.ts';

// Runs k-means restarts (and sweep trials) on worker threads sharing one model-space matrix,
// so that restarts use every core and the main thread stays free for heartbeats and NOTIFY.
// Small problems run inline: starting a thread (and its TypeScript loader) costs ~0.2 s.

export const threadEntry = (): URL => bundledEntry(new URL('./thread.ts', import.meta.url));
const INLINE_WORK = 20_000_000; // rows x dims x k x tasks below which threads do not pay off

export interface TaskProgress {
  task: number;
  info: IterationInfo;
}

export async function runRestarts(
  space: Space,
  tasks: RestartTask[],
  settings: RestartSettings,
  onIteration: (p: TaskProgress) => Promise<void>,
  threads = Math.max(1, availableParallelism()),
  inlineWork = INLINE_WORK,
): Promise<LloydResult[]> {
  const work = tasks.reduce((s, t) => s + space.n * space.d * t.k, 0);
  const results: LloydResult[] = new Array(tasks.length);
  // Past max_runtime, a restart whose k already has a result is not started.
  const skip = (t: RestartTask) =>
    settings.deadline !== undefined && Date.now() > settings.deadline && results.some((r, i) => r && tasks[i]!.k === t.k);
  if (threads <= 1 || tasks.length === 1 || work < inlineWork) {
    for (const t of tasks) {
      if (!skip(t)) results[t.index] = await runRestart(space, t, settings, (info) => onIteration({ task: t.index, info }));
    }
    return results;
  }
  // The matrix is in shared memory (copied there only if it is not yet); every thread reads
  // the same bytes.
  let shared = space.X;
  if (!(shared.buffer instanceof SharedArrayBuffer)) {
    shared = new Float64Array(new SharedArrayBuffer(space.X.byteLength));
    shared.set(space.X);
  }
  const pool = Array.from({ length: Math.min(threads, tasks.length) }, () =>
    new Worker(threadEntry(), { workerData: { buffer: shared.buffer, n: space.n, d: space.d, settings } }),
  );
  const queue = [...tasks];
  let failure: unknown = null;
  let progress: Promise<void> = Promise.resolve();
  try {
    await Promise.all(
      pool.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const next = () => {
              let t = queue.shift();
              while (t && skip(t)) t = queue.shift();
              if (!t || failure) resolve();
              else w.postMessage(t);
            };
            w.on('message', (m: { type: string; task: number; info?: IterationInfo; result?: LloydResult; message?: string }) => {
              if (m.type === 'iteration') {
                // Progress callbacks run one after another; one that throws (cancel, shutdown,
                // lost lease) stops every thread.
                progress = progress.then(() => (failure ? undefined : onIteration({ task: m.task, info: m.info! }))).catch((err) => {
                  failure ??= err;
                  reject(err);
                });
              } else if (m.type === 'done') {
                results[m.task] = m.result!;
                next();
              } else {
                failure ??= new UserError(m.message ?? 'k-means thread failed');
                reject(failure);
              }
            });
            w.on('error', (err) => {
              failure ??= err;
              reject(err);
            });
            next();
          }),
      ),
    );
    await progress;
    if (failure) throw failure;
    return results;
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
}
