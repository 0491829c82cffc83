import { Random } from '../../util/random.ts';
import type { DistanceType, Space } from './geometry.ts';
import { customInit, kmeansPlusPlus, randomInit } from './init.ts';
import { lloyd, type IterationInfo, type LloydResult } from './lloyd.ts';

// One k-means restart ("task"): an initialisation drawn with its own seed, then Lloyd. Tasks
// are independent, so they run on worker threads (threads.ts) or inline, with the same code.

export interface RestartSettings {
  initMethod: 'kmeans++' | 'random' | 'custom' | 'warm';
  distance: DistanceType;
  maxIterations: number;
  earlyStop: boolean;
  minRelProgress: number;
  initFlags?: Uint8Array;
  initColumn?: string;
  warmCentroids?: Float64Array;
  deadline?: number; // Date.now() value: stop iterating once past it
}

export interface RestartTask {
  index: number;
  k: number;
  seed: number;
}

export async function runRestart(
  space: Space,
  task: RestartTask,
  s: RestartSettings,
  onIteration?: (info: IterationInfo) => Promise<void> | void,
): Promise<LloydResult> {
  const rng = new Random(task.seed);
  let init: Float64Array;
  if (s.initMethod === 'kmeans++') init = await kmeansPlusPlus(space, task.k, rng);
  else if (s.initMethod === 'random') init = randomInit(space, task.k, rng);
  else if (s.initMethod === 'custom') init = customInit(space, task.k, s.initFlags!, s.initColumn ?? 'kmeans_init_col');
  else init = s.warmCentroids!;
  return lloyd(space, init, task.k, {
    maxIterations: s.maxIterations,
    earlyStop: s.earlyStop,
    minRelProgress: s.minRelProgress,
    onIteration,
    timeUp: s.deadline === undefined ? undefined : () => Date.now() > s.deadline!,
  });
}
