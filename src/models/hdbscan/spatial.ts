import { Worker } from 'node:worker_threads';
import { boruvka, mergeBest, nodeMinCore, nodeMinRow, searchRound, type RoundBest } from './boruvka.ts';
import { CoreSearch, LEAF_BATCH_MIN_K } from './core-distances.ts';
import { buildKdTree, coreDistancesKd, sharedF64, sharedI32, type KdTree } from './kdtree.ts';
import type { Edge } from './graph.ts';

// HDBSCAN's two expensive passes on a k-d tree, on both cores: the core distances (exact
// k-nearest neighbours) and the Borůvka spanning tree. The rows are handed out in chunks of
// tree positions through a shared counter, so the thread that finishes first takes more; a
// helper thread (helper-thread.ts) works on the same shared arrays as this one.

const CHUNK = 256;
/** Leaves per chunk when the core distances are searched a leaf at a time (~256 rows). */
const LEAF_CHUNK = 8;
/** Below this many rows a second thread costs more (start-up, ~50 ms) than it saves. */
const HELPER_MIN_ROWS = 20_000;

/** Everything both threads read or write, in shared memory. */
export interface SharedState {
  tree: KdTree;
  core: Float64Array; // per tree position
  minCore: Float64Array;
  minRow: Int32Array;
  comp: Int32Array;
  nodeComp: Int32Array;
  helperBest: { w: Float64Array; a: Int32Array; b: Int32Array };
  counter: Int32Array; // [next chunk]
}

export type Task = { kind: 'core'; k: number } | { kind: 'round' };

/** Runs `task` on the chunks this thread takes from the shared counter. */
export function work(s: SharedState, task: Task, best: RoundBest | null): void {
  if (task.kind === 'core' && task.k >= LEAF_BATCH_MIN_K) {
    const search = new CoreSearch(s.tree, task.k);
    const leaves = s.tree.leaves.length;
    for (;;) {
      const from = Atomics.add(s.counter, 0, 1) * LEAF_CHUNK;
      if (from >= leaves) return;
      search.leaves(s.core, from, Math.min(leaves, from + LEAF_CHUNK));
    }
  }
  const n = s.tree.n;
  for (;;) {
    const from = Atomics.add(s.counter, 0, 1) * CHUNK;
    if (from >= n) return;
    const to = Math.min(n, from + CHUNK);
    if (task.kind === 'core') coreDistancesKd(s.tree, task.k, s.core, from, to);
    else searchRound(s.tree, s.core, s.minCore, s.minRow, s.comp, s.nodeComp, best!, from, to);
  }
}

export interface SpatialResult {
  core: Float64Array; // per input row
  edges: Edge[];
}

/**
 * Core distances and the mutual-reachability spanning tree of the n x d Euclidean rows of X.
 * `helperEntry`: the helper thread's script (a bundled entry); null runs on this thread only.
 */
export async function spatialSpanningTree(X: Float64Array, n: number, d: number, minSamples: number, helperEntry: URL | null, phase: (name: string) => Promise<void>): Promise<SpatialResult> {
  const k = Math.max(1, Math.min(minSamples, n));
  const tree = buildKdTree(X, n, d, k >= LEAF_BATCH_MIN_K ? 64 : 32);
  const s: SharedState = {
    tree,
    core: sharedF64(n),
    minCore: sharedF64(tree.nodes),
    minRow: sharedI32(tree.nodes),
    comp: sharedI32(n),
    nodeComp: sharedI32(tree.nodes),
    helperBest: { w: sharedF64(n), a: sharedI32(n), b: sharedI32(n) },
    counter: sharedI32(1),
  };
  const helper = helperEntry && n >= HELPER_MIN_ROWS ? await startHelper(helperEntry, s) : null;
  try {
    const both = async (task: Task, best: RoundBest | null) => {
      Atomics.store(s.counter, 0, 0);
      if (task.kind === 'round') {
        s.helperBest.w.fill(Infinity);
        s.helperBest.a.fill(-1);
        s.helperBest.b.fill(-1);
      }
      const done = helper?.run(task);
      work(s, task, best);
      await done;
    };
    // each phase is announced as it starts (the job's progress says what it is doing)
    await phase('core distances');
    await both({ kind: 'core', k }, null);
    s.minCore.set(nodeMinCore(tree, s.core));
    s.minRow.set(nodeMinRow(tree));
    let round = 0;
    const mst = await boruvka(tree, async (comp, nodeComp, best, components) => {
      await phase(`spanning tree, round ${++round}: ${components.toLocaleString('en-US')} components`);
      s.comp.set(comp);
      s.nodeComp.set(nodeComp);
      await both({ kind: 'round' }, best);
      if (helper) mergeBest(best, s.helperBest);
    });
    const core = new Float64Array(n);
    for (let p = 0; p < n; p++) core[tree.perm[p]!] = s.core[p]!;
    const edges: Edge[] = Array.from(mst.w, (w, i) => ({ a: mst.a[i]!, b: mst.b[i]!, weight: w }));
    return { core, edges };
  } finally {
    await helper?.stop();
  }
}

interface Helper {
  run(task: Task): Promise<void>;
  stop(): Promise<void>;
}

async function startHelper(entry: URL, s: SharedState): Promise<Helper> {
  const worker = new Worker(entry, { workerData: s });
  let pending: { resolve: () => void; reject: (e: Error) => void } | null = null;
  let failed: Error | null = null;
  worker.on('message', () => {
    const p = pending;
    pending = null;
    p?.resolve();
  });
  const fail = (e: Error) => {
    failed = e;
    pending?.reject(e);
    pending = null;
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the HDBSCAN helper thread stopped (exit code ${code})`)));
  return {
    run(task) {
      if (failed) return Promise.reject(failed);
      return new Promise<void>((resolve, reject) => {
        pending = { resolve, reject };
        worker.postMessage(task);
      });
    },
    async stop() {
      worker.removeAllListeners('exit');
      await worker.terminate();
    },
  };
}

/** The helper thread's side: each task runs on the chunks it takes, then it says so. */
export function helperLoop(s: SharedState, port: { on(e: 'message', f: (t: Task) => void): void; postMessage(m: unknown): void }): void {
  const best: RoundBest = s.helperBest;
  port.on('message', (task) => {
    work(s, task, task.kind === 'round' ? best : null);
    port.postMessage('done');
  });
}

