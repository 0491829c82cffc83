import type { Pool } from '../db/connect.ts';
import type { FeatureSpec } from '../features/prepare.ts';
import type { KmeansArtifact } from '../models/kmeans/artifact.ts';
import { UserError } from '../util/errors.ts';
import { ml, run } from './sql.ts';

// The reads of earlier versions of a model, which a new version starts from or is matched to.

/** The newest ready earlier version of a k-means model (warm start, stable ids). */
export interface PreviousVersion {
  modelId: string;
  version: number;
  spec: FeatureSpec;
  artifact: KmeansArtifact;
}

export async function previousVersion(pool: Pool, model: { model_name: string; version: number }, required: boolean): Promise<PreviousVersion | null> {
  const [prev] = await run(pool, ml.selectFrom('ml.models as m').innerJoin('ml.jobs as j', 'j.id', 'm.job_id')
    .select(['m.id', 'm.version', 'm.artifact'])
    .where('m.model_name', '=', model.model_name).where('m.version', '<', model.version)
    .where('j.status', '=', 'ready').where('m.model_type', '=', 'kmeans')
    .orderBy('m.version', 'desc').limit(1));
  if (!prev) {
    if (required) throw new UserError(`"warm_start" needs a ready earlier version of model "${model.model_name}"; train one without warm_start first`);
    return null;
  }
  const a = prev.artifact as KmeansArtifact;
  return { modelId: prev.id, version: prev.version, spec: { features: a.features, dims: a.dims, standardize: a.standardize }, artifact: a };
}

/** The previous version's served centroids (as ml_centroids shows them), mapped into `spec`'s space. */
export async function previousCentroids(pool: Pool, modelId: string, spec: FeatureSpec): Promise<Float64Array | null> {
  const rows = await run(pool, ml.selectFrom('ml.centroids as c')
    .innerJoin('ml.trials as t', (j) => j.onRef('t.model_id', '=', 'c.model_id').onRef('t.trial_id', '=', 'c.trial_id'))
    .select(['c.centroid_id', 'c.feature', 'c.numerical_value', 'c.categorical_value'])
    .where('t.is_optimal', '=', true).where('c.model_id', '=', modelId));
  if (rows.length === 0) return null;
  const k = Math.max(...rows.map((r) => r.centroid_id));
  const d = spec.dims;
  const P = new Float64Array(k * d);
  const byName = new Map(spec.features.map((f) => [f.name, f]));
  for (const r of rows) {
    const f = byName.get(r.feature);
    if (!f) continue;
    const base = (r.centroid_id - 1) * d + f.offset;
    if (f.kind === 'numeric' && r.numerical_value !== null) P[base] = (r.numerical_value - f.mean) / f.scale;
    else if (f.kind === 'categorical' && r.categorical_value) {
      for (const { category, value } of r.categorical_value as { category: string | null; value: number }[]) {
        const j = f.categories.indexOf(category);
        if (j >= 0) P[base + j] = value;
      }
    }
  }
  return P;
}
