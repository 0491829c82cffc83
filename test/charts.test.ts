import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, freshDatabase, rows, type TestDb } from './helpers.ts';

// The chart-ready SQL: ml_project (the 2-D view every clustering model keeps) against a PCA
// model of the same rows and against ml_predict's segments; the lift, gain, calibration,
// precision-recall and predicted-vs-actual functions against computations done here.

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('charts');
  await t.worker();
  await t.pool.query(`CREATE TABLE public.pts AS
    SELECT i AS id, u AS a, 2 * u + v / 3 AS b, -u + v AS c, w AS d, CASE WHEN i % 3 = 0 THEN 'x' ELSE 'y' END AS k,
           (u + w + sin(i * 5.1) > 0.4) AS label, 3 * u - 2 * w + cos(i * 3.3) AS amount
      FROM (SELECT i, sin(i * 0.7) * 3 AS u, cos(i * 1.3) AS v, sin(i * 2.9) * 0.5 AS w FROM generate_series(1, 600) i) s`);
});
afterAll(async () => t?.close());

type Projected = { x: number; y: number; centroid_id: number | null; input: { id: number } };

describe('ml_project', () => {
  it("gives a clustering model's rows on the first two principal components (as a pca model of the same rows) with ml_predict's segments", async () => {
    const q = 'SELECT id, a, b, c, d, k FROM public.pts';
    await t.pool.query(`CALL ml_train('seg', 'kmeans', $1, '{"num_clusters": 3, "exclude": ["id"], "seed": 7}')`, [q]);
    await t.pool.query(`CALL ml_train('pc', 'pca', $1, '{"num_principal_components": 2, "exclude": ["id"]}')`, [q]);
    const seg = await rows<Projected>(t.pool, `SELECT * FROM ml_project('seg', $1)`, [q]);
    const pc = await rows<Projected>(t.pool, `SELECT * FROM ml_project('pc', $1)`, [q]);
    const predicted = await rows<{ id: number; centroid_id: number }>(t.pool, `SELECT (input->>'id')::int AS id, centroid_id FROM ml_predict('seg', $1)`, [q]);
    expect(seg.length).toBe(600);
    const byId = new Map(pc.map((p) => [p.input.id, p]));
    const segOf = new Map(predicted.map((p) => [p.id, p.centroid_id]));
    // the same axes up to sign: take each axis's sign from the first row
    const first = byId.get(seg[0]!.input.id)!;
    const sx = Math.sign(seg[0]!.x * first.x) || 1, sy = Math.sign(seg[0]!.y * first.y) || 1;
    for (const s of seg) {
      const p = byId.get(s.input.id)!;
      expect(s.x).toBeCloseTo(sx * p.x, 8);
      expect(s.y).toBeCloseTo(sy * p.y, 8);
      expect(s.centroid_id).toBe(segOf.get(s.input.id));
      expect(p.centroid_id).toBeNull();
    }
    // without a query: the centroids, at the projection of their model-space coordinates;
    // a centroid is the mean of its members (converged Lloyd), and so is its projection
    const centres = await rows<Projected>(t.pool, `SELECT * FROM ml_project('seg')`);
    expect(centres.map((c) => c.centroid_id)).toEqual([1, 2, 3]);
    for (const c of centres) {
      const members = seg.filter((s) => s.centroid_id === c.centroid_id);
      expect(c.x).toBeCloseTo(members.reduce((acc, m) => acc + m.x, 0) / members.length, 6);
      expect(c.y).toBeCloseTo(members.reduce((acc, m) => acc + m.y, 0) / members.length, 6);
    }
    const sampled = await rows(t.pool, `SELECT * FROM ml_project('seg', $1, '{"max_rows": 50}')`, [q]);
    expect(sampled.length).toBe(50);
  });

  it("labels a density model's rows as ml_predict does, noise included", async () => {
    const q = 'SELECT id, a, b, c, d FROM public.pts';
    await t.pool.query(`CALL ml_train('dens', 'hdbscan', $1, '{"min_cluster_size": 15, "exclude": ["id"]}')`, [q]);
    const mine = await rows<{ id: number; centroid_id: number }>(t.pool, `SELECT (input->>'id')::int AS id, centroid_id, membership_probability, outlier_score FROM ml_project('dens', $1) ORDER BY 1`, [q]);
    const theirs = await rows<{ id: number; centroid_id: number }>(t.pool, `SELECT (input->>'id')::int AS id, centroid_id, membership_probability, outlier_score FROM ml_predict('dens', $1) ORDER BY 1`, [q]);
    expect(mine).toEqual(theirs);
    const exemplars = await rows<Projected>(t.pool, `SELECT * FROM ml_project('dens')`);
    const [{ k }] = await rows<{ k: number }>(t.pool, `SELECT num_clusters AS k FROM ml_evaluate('dens')`);
    expect(new Set(exemplars.map((e) => e.centroid_id))).toEqual(new Set(Array.from({ length: k }, (_, i) => i + 1)));
  });

  it('refuses other models and bad options with a clear message', async () => {
    await t.pool.query(`CALL ml_train('lab', 'logistic_reg', 'SELECT a, b, d, label FROM public.pts', '{"input_label_cols": ["label"]}')`);
    expect((await errorOf(t.pool, `SELECT * FROM ml_project('lab', 'SELECT * FROM public.pts')`)).message).toMatch(/ml_project is for clustering and pca models; "lab" is a logistic_reg model/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_project('seg', 'SELECT * FROM public.pts', '{"max_rows": 0}')`)).message).toMatch(/max_rows/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_project('pc')`)).message).toMatch(/needs a query/);
  });
});

describe('chart data of supervised models', () => {
  it('lift, gain and calibration on a query equal the deciles computed here; the stored ones cover the evaluation split', async () => {
    const q = 'SELECT id, a, b, d, label FROM public.pts';
    await t.pool.query(`CALL ml_train('churn', 'logistic_reg', $1, '{"input_label_cols": ["label"], "exclude": ["id"]}')`, [q]);
    const scored = await rows<{ y: boolean; p: number }>(t.pool,
      `SELECT (input->>'label')::boolean AS y, (SELECT (e->>'prob')::float8 FROM jsonb_array_elements(predicted_probs) e WHERE e->>'label' = 'true') AS p
         FROM ml_predict('churn', $1)`, [q]);
    // ntile(10) over the score, highest first: the first n % 10 groups one row larger
    const sorted = scored.slice().sort((a, b) => b.p - a.p);
    const n = sorted.length;
    const overall = sorted.filter((r) => r.y).length / n;
    const groups: { y: boolean; p: number }[][] = [];
    let at = 0;
    for (let g = 0; g < 10; g++) {
      const size = Math.floor(n / 10) + (g < n % 10 ? 1 : 0);
      groups.push(sorted.slice(at, at + size));
      at += size;
    }
    const lift = await rows<{ decile: number; rows: number; response_rate: number; lift: number; cumulative_gain: number; cumulative_lift: number }>(t.pool,
      `SELECT * FROM ml_lift_curve('churn', $1)`, [q]);
    expect(lift.map((l) => l.decile)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let found = 0;
    const positives = sorted.filter((r) => r.y).length;
    lift.forEach((l, g) => {
      const rate = groups[g]!.filter((r) => r.y).length / groups[g]!.length;
      found += groups[g]!.filter((r) => r.y).length;
      expect(Number(l.rows)).toBe(groups[g]!.length);
      expect(l.response_rate).toBeCloseTo(rate, 12);
      expect(l.lift).toBeCloseTo(rate / overall, 12);
      expect(l.cumulative_gain).toBeCloseTo(found / positives, 12);
    });
    expect(lift[9]!.cumulative_lift).toBeCloseTo(1, 12);
    const cal = await rows<{ bin: number; mean_predicted: number; observed: number }>(t.pool, `SELECT * FROM ml_calibration_curve('churn', $1)`, [q]);
    expect(cal.map((c) => c.bin)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    cal.forEach((c, i) => {
      const g = groups[9 - i]!;
      expect(c.mean_predicted).toBeCloseTo(g.reduce((s, r) => s + r.p, 0) / g.length, 12);
      expect(c.observed).toBeCloseTo(g.filter((r) => r.y).length / g.length, 12);
    });
    // stored at training time: the evaluation split's deciles
    const stored = await rows<{ rows: string; cumulative_gain: number; min_score: number; max_score: number }>(t.pool, `SELECT * FROM ml_lift_curve('churn')`);
    const [{ evaluation_rows }] = await rows<{ evaluation_rows: number }>(t.pool, `SELECT (metrics->>'evaluation_rows')::int AS evaluation_rows FROM ml_models WHERE model_name = 'churn'`);
    expect(stored.reduce((s, d) => s + Number(d.rows), 0)).toBe(evaluation_rows);
    expect(stored[9]!.cumulative_gain).toBeCloseTo(1, 12);
    for (let i = 1; i < 10; i++) expect(stored[i]!.max_score).toBeLessThanOrEqual(stored[i - 1]!.min_score);
  });

  it('precision-recall comes from the ROC counts; predicted vs actual matches ml_predict', async () => {
    const roc = await rows<{ threshold: number; true_positives: string; false_positives: string; recall: number }>(t.pool, `SELECT * FROM ml_roc_curve('churn')`);
    const pr = await rows<{ threshold: number; precision: number; recall: number }>(t.pool, `SELECT * FROM ml_pr_curve('churn')`);
    expect(pr.length).toBe(roc.length);
    pr.forEach((p, i) => {
      const tp = Number(roc[i]!.true_positives), fp = Number(roc[i]!.false_positives);
      expect(p.threshold).toBe(roc[i]!.threshold);
      expect(p.precision).toBeCloseTo(tp + fp > 0 ? tp / (tp + fp) : 1, 12);
      expect(p.recall).toBe(roc[i]!.recall);
    });
    const q = 'SELECT id, a, b, d, amount FROM public.pts';
    await t.pool.query(`CALL ml_train('amount', 'linear_reg', $1, '{"input_label_cols": ["amount"], "exclude": ["id"]}')`, [q]);
    const pairs = await rows<{ actual: number; predicted: number }>(t.pool, `SELECT * FROM ml_predicted_vs_actual('amount', $1) ORDER BY actual`, [q]);
    const direct = await rows<{ actual: number; predicted: number }>(t.pool, `SELECT (input->>'amount')::float8 AS actual, predicted_value AS predicted FROM ml_predict('amount', $1) ORDER BY 1`, [q]);
    expect(pairs).toEqual(direct);
    expect((await rows(t.pool, `SELECT * FROM ml_predicted_vs_actual('amount', $1, '{"max_rows": 25}')`, [q])).length).toBe(25);
    // regression calibration: the mean label per decile of the prediction
    const cal = await rows<{ rows: string; observed: number }>(t.pool, `SELECT * FROM ml_calibration_curve('amount', $1)`, [q]);
    expect(cal.reduce((s, c) => s + Number(c.rows) * c.observed, 0) / 600).toBeCloseTo(direct.reduce((s, d) => s + d.actual, 0) / 600, 9);
    expect((await errorOf(t.pool, `SELECT * FROM ml_lift_curve('amount')`)).message).toMatch(/ml_lift_curve is for binary classification models; "amount" is a regression model/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_predicted_vs_actual('churn', 'SELECT * FROM public.pts')`)).message).toMatch(/is for regression models/);
  });
});
