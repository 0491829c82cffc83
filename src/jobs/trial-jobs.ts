import { withTransaction } from '../db/connect.ts';
import type { FeatureSpec } from '../features/prepare.ts';
import type { StoredTrial } from '../models/kmeans/artifact.ts';
import { trainTrial, type TrialSettings } from '../models/kmeans/trials.ts';
import { storeSweepTrial, sweepTrials } from '../store/trials.ts';
import { UserError, messageOf } from '../util/errors.ts';
import { loadModelRow, prepareTrainingData } from './training-data.ts';
import type { JobContext } from './context.ts';

// A num_clusters sweep spreads its trials over the sidecars: each k is a job of kind 'trial'
// (NOTIFY wakes every sidecar), the sweep's own sidecar takes its trials first with the data it
// already holds, other sidecars load the data themselves with the sweep's feature preparation,
// and the sweep waits for the last one, then chooses the served trial (train-kmeans.ts).

export interface TrialPayload {
  trial_id: number;
  k: number;
  spec: FeatureSpec;
  settings: TrialSettings;
}

export type TrialOutcome = { trialId: number; k: number; stored: StoredTrial } | { trialId: number; k: number; error: string };

/** Stores a trial's result and ends its job, in one transaction (nothing if its lease was lost). */
async function storeTrial(ctx: JobContext, jobId: string, modelId: string, p: TrialPayload, t: StoredTrial): Promise<void> {
  await withTransaction(ctx.pool, async (client) => {
    await ctx.queue.lockOwn(client, jobId);
    await storeSweepTrial(client, modelId, p.trial_id, { num_clusters: p.k }, t);
    await ctx.queue.complete(client, jobId, { phase: 'done', k: p.k, iterations: t.iterations.length });
  });
}

/** A trial taken by another sidecar: load the data with the sweep's preparation, train one k. */
export async function trainTrialJob(ctx: JobContext): Promise<void> {
  const p = ctx.job.payload as unknown as TrialPayload;
  const model = await loadModelRow(ctx.pool, ctx.job.model_id);
  const exclude = Array.isArray(model.options.exclude) ? (model.options.exclude as string[]) : [];
  const { X, n, d } = await prepareTrainingData(ctx, {
    exclude,
    standardize: p.spec.standardize,
    deadline: p.settings.deadline,
    reuse: { spec: p.spec, version: model.version },
  });
  const t = await trainTrial(X, n, d, p, (run, info) => ctx.checkpoint({ phase: 'train', k: p.k, run: run + 1, iteration: info.iteration, loss: info.loss }));
  await storeTrial(ctx, ctx.job.id, model.id, p, t);
}

/** The sweep's side: enqueue the trials (once), train what no other sidecar took, wait for the rest. */
export async function runSweep(
  ctx: JobContext,
  modelId: string,
  data: { X: Float64Array; n: number; d: number; spec: FeatureSpec },
  ks: number[],
  settings: TrialSettings,
): Promise<TrialOutcome[]> {
  const parent = ctx.job.id;
  await ctx.queue.enqueueTrials(parent, ks.map((k, i): TrialPayload => ({ trial_id: i + 1, k, spec: data.spec, settings })));
  for (;;) {
    const child = await ctx.queue.claimTrial(parent);
    if (child) {
      const p = child.payload as unknown as TrialPayload;
      const release = ctx.adopt(child.id);
      try {
        const t = await trainTrial(data.X, data.n, data.d, p, (run, info) =>
          ctx.checkpoint({ phase: 'train', trial: p.trial_id, k: p.k, run: run + 1, iteration: info.iteration, loss: info.loss }),
        );
        await storeTrial(ctx, child.id, modelId, p, t);
      } catch (err) {
        if (err instanceof UserError) await ctx.queue.fail(child.id, messageOf(err));
        else {
          await ctx.queue.release(child.id).catch(() => undefined);
          throw err;
        }
      } finally {
        release();
      }
      continue;
    }
    const children = await ctx.queue.children(parent);
    const open = children.filter((c) => !['done', 'failed', 'cancelled'].includes(c.status)).length;
    if (open === 0) break;
    await ctx.checkpoint({ phase: 'waiting for trials on other sidecars', open, of: children.length });
    await new Promise((r) => setTimeout(r, 200));
  }
  const [children, stored] = await Promise.all([
    ctx.queue.children(parent),
    sweepTrials(ctx.pool, modelId),
  ]);
  const byTrial = new Map(stored.map((s) => [s.trial_id, s.artifact]));
  return children.map((c): TrialOutcome => {
    const k = ks[c.trial_id - 1]!;
    const s = byTrial.get(c.trial_id);
    return s ? { trialId: c.trial_id, k, stored: s } : { trialId: c.trial_id, k, error: c.error ?? `trial ${c.trial_id} was ${c.status}` };
  });
}
