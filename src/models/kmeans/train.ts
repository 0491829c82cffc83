import { UserError } from '../../util/errors.ts';
import { Random } from '../../util/random.ts';
import { makeSpace, type DistanceType, type Space } from './geometry.ts';
import { customInit, kmeansPlusPlus, randomInit } from './init.ts';
import { lloyd, type IterationInfo, type LloydResult } from './lloyd.ts';

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
  deadline?: number; // performance.now() value: stop (keeping the best so far) once past it
}

export interface KmeansModel extends LloydResult {
  k: number;
  space: Space;
  run: number; // which restart won (0-based)
}

/**
 * Trains k-means on an n x d model-space matrix: nInit restarts (seeds seed, seed+1, ...) of
 * the chosen initialisation followed by Lloyd iterations; the restart with the lowest loss wins.
 * `onIteration` sees every iteration of every restart (progress, cancellation).
 */
export async function trainKmeans(
  X: Float64Array,
  n: number,
  d: number,
  opts: KmeansOptions,
  onIteration?: (run: number, info: IterationInfo) => Promise<void> | void,
): Promise<KmeansModel> {
  const k = opts.numClusters;
  if (k > n) throw new UserError(`option "num_clusters" (${k}) must not exceed the number of training rows (${n})`);
  const space = makeSpace(X, n, d, opts.distance);
  // Deterministic initialisations give the same result on every restart: run them once.
  const runs = opts.initMethod === 'custom' || opts.initMethod === 'warm' ? 1 : opts.nInit;
  let best: LloydResult | null = null;
  let bestRun = 0;
  const timeUp = () => opts.deadline !== undefined && performance.now() > opts.deadline;
  let timedOut = false;
  for (let run = 0; run < runs; run++) {
    if (best && timeUp()) {
      timedOut = true; // restarts left undone
      break;
    }
    const rng = new Random(opts.seed + run);
    let init: Float64Array;
    if (opts.initMethod === 'kmeans++') init = await kmeansPlusPlus(space, k, rng);
    else if (opts.initMethod === 'random') init = randomInit(space, k, rng);
    else if (opts.initMethod === 'custom') init = customInit(space, k, opts.initFlags!, opts.initColumn ?? 'kmeans_init_col');
    else init = opts.warmCentroids!;
    const result = await lloyd(space, init, k, {
      maxIterations: opts.maxIterations,
      earlyStop: opts.earlyStop,
      minRelProgress: opts.minRelProgress,
      onIteration: (info) => onIteration?.(run, info),
      timeUp,
    });
    timedOut ||= result.timedOut;
    if (!best || result.loss < best.loss) {
      best = result;
      bestRun = run;
    }
  }
  return { ...best!, timedOut, k, space, run: bestRun };
}
