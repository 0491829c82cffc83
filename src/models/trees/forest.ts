import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { bundledEntry } from '../../util/bundle.ts';
import { UserError } from '../../util/errors.ts';
import type { Binned } from './bins.ts';
import { growForestShare, type ForestShare, type ForestTask } from './forest-share.ts';

// A random forest's trees (one boosting round of num_parallel_tree trees on the gradients at
// the base score) are independent: they grow on worker threads, one per core, thread j taking
// trees j, j + T, j + 2T, ... (forest-share.ts), and hand back their trees and summed leaf
// values. The main thread only waits (growing a share itself held the event loop for the
// whole share: 0.9 s on 100,000 rows); small forests grow inline.

export const forestThreadEntry = (): URL => bundledEntry(new URL('./forest-thread.ts', import.meta.url));
// Row-trees below which threads do not pay off (starting one costs ~50 ms); inline, such a
// forest holds the event loop for well under 100 ms.
const INLINE_WORK = 500_000;

/** Every tree of the round, on up to every core; trees in index order and their summed leaf values. */
export async function growForest(data: Binned, task: ForestTask, threads = availableParallelism(), inlineWork = INLINE_WORK): Promise<ForestShare> {
  if (data.n * task.params.numParallelTree < inlineWork) return growForestShare(data, task, 0, 1);
  const T = Math.max(1, Math.min(threads, task.params.numParallelTree));
  let gh = task.gh;
  if (!(gh.buffer instanceof SharedArrayBuffer)) {
    gh = new Float64Array(new SharedArrayBuffer(task.gh.byteLength));
    gh.set(task.gh);
  }
  const shared = { ...task, gh };
  const workers = Array.from({ length: T }, (_, j) => new Worker(forestThreadEntry(), { workerData: { data, task: shared, first: j, step: T } }));
  const others = workers.map(
    (w) =>
      new Promise<ForestShare>((resolve, reject) => {
        w.once('message', (m: ForestShare | { error: string }) => ('error' in m ? reject(new UserError(m.error)) : resolve(m)));
        w.once('error', reject);
      }),
  );
  try {
    const shares = await Promise.all(others);
    const trees = shares.flatMap((s) => s.trees).sort((a, b) => a.index - b.index);
    const delta = shares[0]!.delta;
    for (const s of shares.slice(1)) for (let i = 0; i < delta.length; i++) delta[i] += s.delta[i]!;
    return { trees, delta };
  } finally {
    // Also when one share failed: the others stop rather than run on unseen.
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
