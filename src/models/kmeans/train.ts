import { UserError } from '../../util/errors.ts';
import { makeSpace, type DistanceType, type Space } from './geometry.ts';
import type { IterationInfo, LloydResult } from './lloyd.ts';
import type { RestartSettings, RestartTask } from './restarts.ts';
import { runRestarts } from './threads.ts';

export interface KmeansOptions {
  numClusters: number;
  initMethod: 'kmeans++' | 'random' | 'custom' | 'warm';
  distance: DistanceType;
  maxIterations: number;
  earlyStop: boolean;
  minRelProgress: number;
  seed: number;
  nInit: number;
  initFlags?: Uint8Array; // custom init: rows that are initial centroids
  initColumn?: string;
  warmCentroids?: Float64Array; // warm start: the previous version's centroids
  deadline?: number; // Date.now() value: stop (keeping the best so far) once past it
  threads?: number;
}

export interface KmeansModel extends LloydResult {
  k: number;
  space: Space;
  run: number; // which restart won (0-based)
}

export type SweepOptions = Omit<KmeansOptions, 'numClusters'>;

/**
 * Trains one k-means model per k (a sweep's trials; one k for a plain model): nInit restarts
 * each (seeds seed, seed+1, ...), all restarts of all trials spread over worker threads; per
 * trial the restart with the lowest loss wins. `onIteration` sees every iteration.
 */
export async function trainSweep(
  X: Float64Array,
  n: number,
  d: number,
  ks: number[],
  opts: SweepOptions,
  onIteration?: (trial: number, run: number, info: IterationInfo) => Promise<void> | void,
): Promise<KmeansModel[]> {
  for (const k of ks) {
    if (k > n) throw new UserError(`option "num_clusters" (${k}) must not exceed the number of training rows (${n})`);
  }
  const space = makeSpace(X, n, d, opts.distance);
  // Deterministic initialisations give the same result on every restart: run them once.
  const runs = opts.initMethod === 'custom' || opts.initMethod === 'warm' ? 1 : opts.nInit;
  const tasks: RestartTask[] = [];
  const owner: { trial: number; run: number }[] = [];
  ks.forEach((k, trial) => {
    for (let run = 0; run < runs; run++) {
      owner.push({ trial, run });
      tasks.push({ index: tasks.length, k, seed: opts.seed + run });
    }
  });
  const settings: RestartSettings = {
    initMethod: opts.initMethod,
    distance: opts.distance,
    maxIterations: opts.maxIterations,
    earlyStop: opts.earlyStop,
    minRelProgress: opts.minRelProgress,
    initFlags: opts.initFlags,
    initColumn: opts.initColumn,
    warmCentroids: opts.warmCentroids,
    deadline: opts.deadline,
  };
  const results = await runRestarts(
    space,
    tasks,
    settings,
    ({ task, info }) => Promise.resolve(onIteration?.(owner[task]!.trial, owner[task]!.run, info)),
    opts.threads,
  );
  return ks.map((k, trial) => {
    let best = -1;
    let timedOut = false;
    results.forEach((r, i) => {
      if (owner[i]!.trial !== trial || !r) return;
      timedOut ||= r.timedOut;
      if (best < 0 || r.loss < results[best]!.loss) best = i;
    });
    const r = results[best]!;
    return { ...r, timedOut, k, space, run: owner[best]!.run };
  });
}

/** One model: a sweep of one k. */
export async function trainKmeans(
  X: Float64Array,
  n: number,
  d: number,
  opts: KmeansOptions,
  onIteration?: (run: number, info: IterationInfo) => Promise<void> | void,
): Promise<KmeansModel> {
  const [m] = await trainSweep(X, n, d, [opts.numClusters], opts, (_t, run, info) => onIteration?.(run, info));
  return m!;
}
