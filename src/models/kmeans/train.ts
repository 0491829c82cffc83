import { UserError } from '../../util/errors.ts';
import { makeSpace, type DistanceType, type Space } from './geometry.ts';
import type { IterationInfo, LloydResult } from './lloyd.ts';
import type { RestartSettings, RestartTask } from './restarts.ts';
import { runRestarts } from './threads.ts';
import { kmeansPlusPlus, randomInit, sampleSpace } from './init.ts';
import { lloyd } from './lloyd.ts';
import { Random } from '../../util/random.ts';

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
  if (n > SAMPLE_FIRST_ABOVE && (opts.initMethod === 'kmeans++' || opts.initMethod === 'random')) return trainOnSampleFirst(space, ks, opts, onIteration);
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

/**
 * Above SAMPLE_FIRST_ABOVE rows, restarts run on one uniform sample (a quarter of the rows,
 * 25,000 to PREFIT_SAMPLE), each seeded with its own seed and run by Lloyd to convergence; the
 * restart with the lowest loss on the sample then finishes with Lloyd on every row, once.
 * Seeding makes (2 + ln k) passes per centre over its rows, and Lloyd from a far start many
 * passes over every row; restarts on a sample reach the same objective for a fraction of the
 * time and no thread memory.
 */
export const PREFIT_SAMPLE = 100_000;
export const SAMPLE_FIRST_ABOVE = 50_000;

async function trainOnSampleFirst(
  space: Space,
  ks: number[],
  opts: SweepOptions,
  onIteration?: (trial: number, run: number, info: IterationInfo) => Promise<void> | void,
): Promise<KmeansModel[]> {
  const lloydOptions = { maxIterations: opts.maxIterations, earlyStop: opts.earlyStop, minRelProgress: opts.minRelProgress };
  const timeUp = opts.deadline === undefined ? undefined : () => Date.now() > opts.deadline!;
  const models: KmeansModel[] = [];
  // One sample for every restart (they differ by their seeding), and seeding on its first
  // rows: on 1M x 8, k = 8 a sample per restart and k-means++ over all 100,000 sample rows
  // were 0.1 s of the 0.4 s of training.
  const sample = sampleSpace(space, Math.min(PREFIT_SAMPLE, Math.max(25_000, Math.floor(space.n / 4))), new Random(opts.seed));
  for (const [trial, k] of ks.entries()) {
    const seedRows = Math.min(sample.n, Math.max(20_000, 50 * k));
    const seeding: Space = { ...sample, X: sample.X.subarray(0, seedRows * sample.d), n: seedRows };
    let best: { run: number; centroids: Float64Array; loss: number } | null = null;
    for (let run = 0; run < opts.nInit && !(best && timeUp?.()); run++) {
      const rng = new Random(opts.seed + run);
      const init = opts.initMethod === 'random' ? randomInit(seeding, k, rng) : await kmeansPlusPlus(seeding, k, rng);
      // Progress (and with it cancel, SIGTERM and lease checks) between the sample's iterations too.
      const fit = await lloyd(sample, init, k, { ...lloydOptions, timeUp, onIteration: (info) => onIteration?.(trial, run, info) });
      if (!best || fit.loss < best.loss) best = { run, centroids: fit.centroids, loss: fit.loss };
    }
    const run = best!.run;
    const full = await lloyd(space, best!.centroids, k, { ...lloydOptions, timeUp, onIteration: (info) => onIteration?.(trial, run, info) });
    models.push({ ...full, k, space, run });
  }
  return models;
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
