import type { Pool } from '../db/connect.ts';
import type { FeatureSpec } from '../features/prepare.ts';
import type { KmeansArtifact } from '../models/kmeans/artifact.ts';
import { UserError } from '../util/errors.ts';

// The reads of earlier versions of a model, which a new version starts from or is matched to.

/** The newest ready earlier version of a k-means model (warm start, stable ids). */
export interface PreviousVersion {
  modelId: string;
  version: number;
  spec: FeatureSpec;
  artifact: KmeansArtifact;
}

export async function previousVersion(pool: Pool, model: { model_name: string; version: number }, required: boolean): Promise<PreviousVersion | null> {
  const { rows } = await pool.query<{ id: string; version: number; artifact: KmeansArtifact }>(
    `SELECT m.id::text, m.version, m.artifact FROM ml.models m JOIN ml.jobs j ON j.id = m.job_id
      WHERE m.model_name = $1 AND m.version < $2 AND j.status = 'ready' AND m.model_type = 'kmeans'
      ORDER BY m.version DESC LIMIT 1`,
    [model.model_name, model.version],
  );
  const prev = rows[0];
  if (!prev) {
    if (required) throw new UserError(`"warm_start" needs a ready earlier version of model "${model.model_name}"; train one without warm_start first`);
    return null;
  }
  const a = prev.artifact;
  return { modelId: prev.id, version: prev.version, spec: { features: a.features, dims: a.dims, standardize: a.standardize }, artifact: a };
}

/** The previous version's served centroids (as ml_centroids shows them), mapped into `spec`'s space. */
export async function previousCentroids(pool: Pool, modelId: string, spec: FeatureSpec): Promise<Float64Array | null> {
  const { rows } = await pool.query<{ centroid_id: number; feature: string; numerical_value: number | null; categorical_value: { category: string | null; value: number }[] | null }>(
    `SELECT c.centroid_id, c.feature, c.numerical_value, c.categorical_value
       FROM ml.centroids c JOIN ml.trials t ON t.model_id = c.model_id AND t.trial_id = c.trial_id AND t.is_optimal
      WHERE c.model_id = $1`,
    [modelId],
  );
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
      for (const { category, value } of r.categorical_value) {
        const j = f.categories.indexOf(category);
        if (j >= 0) P[base + j] = value;
      }
    }
  }
  return P;
}
