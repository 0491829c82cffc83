import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, freshDatabase, rows, type TestDb } from './helpers.ts';

// PCA against an independent computation here: the standardized columns' covariance, its
// leading eigenvectors by power iteration with deflation, and the scores of every row.

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('pca');
  await t.worker();
  // three correlated columns, one independent, one categorical
  await t.pool.query(`CREATE TABLE public.pts AS
    SELECT i AS id, u AS a, 2 * u + v / 3 AS b, -u + v AS c, w AS d, CASE WHEN i % 3 = 0 THEN 'x' ELSE 'y' END AS k
      FROM (SELECT i, sin(i * 0.7) * 3 AS u, cos(i * 1.3) AS v, sin(i * 2.9) * 0.5 AS w FROM generate_series(1, 400) i) s`);
});
afterAll(async () => t?.close());

type Row = { a: number; b: number; c: number; d: number };

/** Standardized columns (population sd), their sample covariance, eigenpairs by power iteration. */
function reference(data: Row[], k: number): { values: number[]; vectors: number[][]; z: number[][] } {
  const cols = (['a', 'b', 'c', 'd'] as const).map((c) => data.map((r) => r[c]));
  const n = data.length;
  const z = data.map((_, i) =>
    cols.map((col) => {
      const mean = col.reduce((s, v) => s + v, 0) / n;
      const sd = Math.sqrt(col.reduce((s, v) => s + (v - mean) ** 2, 0) / n);
      return (col[i]! - mean) / sd;
    }),
  );
  const d = 4;
  let C = Array.from({ length: d }, (_, a) => Array.from({ length: d }, (_, b) => z.reduce((s, r) => s + r[a]! * r[b]!, 0) / (n - 1)));
  const values: number[] = [];
  const vectors: number[][] = [];
  for (let c = 0; c < k; c++) {
    let v = [1, 0.5, 0.25, 0.125];
    for (let it = 0; it < 5000; it++) {
      const w = C.map((row) => row.reduce((s, x, j) => s + x * v[j]!, 0));
      const norm = Math.sqrt(w.reduce((s, x) => s + x * x, 0));
      v = w.map((x) => x / norm);
    }
    const lambda = C.reduce((s, row, a) => s + v[a]! * row.reduce((t2, x, b) => t2 + x * v[b]!, 0), 0);
    values.push(lambda);
    vectors.push(v);
    C = C.map((row, a) => row.map((x, b) => x - lambda * v[a]! * v[b]!));
  }
  return { values, vectors, z };
}

describe('pca', () => {
  it('components, eigenvalues and explained variance equal an independent computation; scores agree three ways', async () => {
    await t.pool.query(`CALL ml_train('pts_pca', 'pca', 'SELECT a, b, c, d FROM public.pts', '{"num_principal_components": 2}')`);
    const data = await rows<Row>(t.pool, 'SELECT a, b, c, d FROM public.pts ORDER BY id');
    const ref = reference(data, 2);
    const info = await rows<{ principal_component_id: number; eigenvalue: number; explained_variance_ratio: number; cumulative_explained_variance_ratio: number }>(
      t.pool, `SELECT * FROM ml_principal_component_info('pts_pca')`);
    expect(info.map((r) => r.principal_component_id)).toEqual([1, 2]);
    info.forEach((r, i) => expect(r.eigenvalue).toBeCloseTo(ref.values[i]!, 8));
    const total = (4 * data.length) / (data.length - 1); // the trace of a standardized covariance (population sd, n - 1)
    expect(info[0]!.explained_variance_ratio).toBeCloseTo(ref.values[0]! / total, 8);
    expect(info[1]!.cumulative_explained_variance_ratio).toBeCloseTo((ref.values[0]! + ref.values[1]!) / total, 8);
    const loadings = await rows<{ principal_component_id: number; feature: string; numerical_value: number }>(t.pool, `SELECT * FROM ml_principal_components('pts_pca')`);
    for (let c = 0; c < 2; c++) {
      const mine = ['a', 'b', 'c', 'd'].map((f) => loadings.find((l) => l.principal_component_id === c + 1 && l.feature === f)!.numerical_value);
      const dot = mine.reduce((s, v, j) => s + v * ref.vectors[c]![j]!, 0);
      expect(Math.abs(dot)).toBeCloseTo(1, 8); // the same direction, up to sign
    }
    const scores = await rows<{ p: Record<string, number>; f: number[] }>(t.pool,
      `SELECT p.details AS p, pts_pca_predict((p.input->>'a')::float8, (p.input->>'b')::float8, (p.input->>'c')::float8, (p.input->>'d')::float8) AS f
         FROM ml_predict('pts_pca', 'SELECT a, b, c, d FROM public.pts ORDER BY id') p`);
    expect(scores.length).toBe(400);
    scores.forEach((s, i) => {
      for (let c = 0; c < 2; c++) {
        const sign = Math.sign(loadings.filter((l) => l.principal_component_id === c + 1).reduce((acc, l, j) => acc + l.numerical_value * ref.vectors[c]![j]!, 0));
        const expected = sign * ref.z[i]!.reduce((acc, v, j) => acc + v * ref.vectors[c]![j]!, 0);
        expect(s.p[`principal_component_${c + 1}`]).toBeCloseTo(expected, 8);
        expect(s.f[c]).toBeCloseTo(expected, 8);
      }
    });
  });

  it('pca_explained_variance_ratio picks the fewest components reaching it; categories load per category; options are checked', async () => {
    await t.pool.query(`CALL ml_train('pts_pca_r', 'pca', 'SELECT a, b, c, d, k FROM public.pts', '{"pca_explained_variance_ratio": 0.9}')`);
    const info = await rows<{ cumulative_explained_variance_ratio: number }>(t.pool, `SELECT * FROM ml_principal_component_info('pts_pca_r')`);
    expect(info[info.length - 1]!.cumulative_explained_variance_ratio).toBeGreaterThanOrEqual(0.9);
    if (info.length > 1) expect(info[info.length - 2]!.cumulative_explained_variance_ratio).toBeLessThan(0.9);
    const [k] = await rows<{ categorical_value: { category: string; value: number }[] }>(t.pool,
      `SELECT categorical_value FROM ml_principal_components('pts_pca_r') WHERE feature = 'k' AND principal_component_id = 1`);
    expect(k!.categorical_value.map((x) => x.category)).toEqual(['x', 'y']);
    expect((await errorOf(t.pool, `SELECT ml_create_model('x', 'pca', 'SELECT a FROM public.pts', '{"num_principal_components": 2, "pca_explained_variance_ratio": 0.5}')`)).message)
      .toMatch(/give "num_principal_components" or "pca_explained_variance_ratio", not both/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_principal_components('nope')`)).message).toMatch(/model "nope" does not exist/);
  });
});
