import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ensemble } from '../src/models/trees/ensemble.ts';
import { ensembleShap, unflatten, type FlatForest } from '../src/models/trees/shap.ts';
import { errorOf, freshDatabase, rows, type TestDb } from './helpers.ts';

// Supervised models from SQL, checked against independent computations: PostgreSQL's own
// regr_* aggregates, metrics recomputed here from ml_predict's output, and the SQL metrics of
// ml_evaluate(query) against the sidecar's training-time metrics on the same evaluation rows.

let t: TestDb;

// 3,000 rows: numeric x1..x3, a category, a boolean label with a non-linear rule, a 3-class
// label, a quantity, and a fixed evaluation split (every 5th row).
const DATA = `
SELECT setseed(0.31);
CREATE TABLE sup AS
SELECT i, x1, x2, x3, c, (i % 5 = 0) AS is_eval,
       (random() < 1 / (1 + exp(-(2 * x1 - 1.5 * x2 + 2 * (x3 > 0.3)::int - 1 + CASE c WHEN 'a' THEN 1 ELSE 0 END)))) AS churned,
       CASE WHEN x1 + 0.3 * random() > 0.5 THEN 'high' WHEN x2 > 0 THEN 'mid' ELSE 'low' END AS tier,
       5 + 3 * x1 - 2 * x2 + 4 * (x3 > 0)::int + CASE c WHEN 'a' THEN 2 WHEN 'b' THEN -1 ELSE 0 END + 0.3 * (random() - 0.5) AS spend
FROM (SELECT i, 2 * random() - 1 AS x1, 2 * random() - 1 AS x2, 2 * random() - 1 AS x3,
             (ARRAY['a', 'b', 'c'])[1 + floor(random() * 3)::int] AS c
        FROM generate_series(1, 3000) i) s;
`;
const Q = 'SELECT * FROM sup';
const split = (label: string, drop: string[]) =>
  JSON.stringify({ input_label_cols: [label], exclude: ['i', ...drop], data_split_method: 'custom', data_split_col: 'is_eval', seed: 3 });

async function train(name: string, type: string, options: string, query = Q): Promise<void> {
  await t.pool.query('CALL ml_train($1, $2, $3, $4)', [name, type, query, options]);
}

beforeAll(async () => {
  t = await freshDatabase('supervised');
  await t.pool.query(DATA);
  await t.worker({ concurrency: 2 });
  await Promise.all([
    train('spend_lin', 'linear_reg', split('spend', ['churned', 'tier'])),
    train('spend_bt', 'boosted_tree_regressor', split('spend', ['churned', 'tier'])),
    train('churn_lr', 'logistic_reg', split('churned', ['spend', 'tier'])),
    train('churn_bt', 'boosted_tree_classifier', split('churned', ['spend', 'tier'])),
    train('tier_rf', 'random_forest_classifier', JSON.stringify({ target: 'tier', exclude: ['i', 'spend', 'churned'], data_split_method: 'custom', data_split_col: 'is_eval', num_parallel_tree: 20, seed: 3 })),
    train('tier_lr', 'logistic_reg', split('tier', ['spend', 'churned'])),
  ]);
}, 240_000);
afterAll(async () => t?.close());

/** Rank-based ROC AUC, written independently of the product's. */
function auc(scores: number[], positive: boolean[]): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!positive[i]) continue;
    for (let j = 0; j < scores.length; j++) {
      if (positive[j]) continue;
      pairs++;
      wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return wins / pairs;
}

describe('linear_reg', () => {
  it('with one feature and no split equals PostgreSQL\u2019s own least squares (regr_slope, regr_intercept, regr_r2)', async () => {
    await train('one', 'linear_reg', JSON.stringify({ target: 'spend', data_split_method: 'no_split' }), 'SELECT x1, spend FROM sup');
    const [r] = await rows<{ a: number; b: number; r2: number }>(t.pool, `SELECT regr_intercept(spend, x1) AS a, regr_slope(spend, x1) AS b, regr_r2(spend, x1) AS r2 FROM sup`);
    const preds = await rows<{ x1: number; p: number }>(t.pool, `SELECT x1, one_predict(x1) AS p FROM sup`);
    for (const p of preds) expect(p.p).toBeCloseTo(r!.a + r!.b * p.x1, 9);
    const [e] = await rows<{ r2_score: number }>(t.pool, `SELECT r2_score FROM ml_evaluate('one')`);
    expect(e!.r2_score).toBeCloseTo(r!.r2, 9);
  });

  it('recovers the generating coefficients of the numeric features', async () => {
    const [m] = await rows<{ artifact: { linear: { weights: number[][] }; features: { name: string; offset: number; scale: number }[] } }>(
      t.pool,
      `SELECT m.artifact FROM ml.models m WHERE model_name = 'spend_lin'`,
    );
    const f = (name: string) => m!.artifact.features.find((x) => x.name === name)!;
    const w = m!.artifact.linear.weights[0]!;
    expect(w[f('x1').offset]! / f('x1').scale).toBeCloseTo(3, 1);
    expect(w[f('x2').offset]! / f('x2').scale).toBeCloseTo(-2, 1);
  });
});

describe('scoring', () => {
  it('the generated function agrees with ml_predict on every row, for every family', async () => {
    for (const [model, fn, cast] of [
      ['spend_lin', 'spend_lin_predict', 'predicted_value'],
      ['spend_bt', 'spend_bt_predict', 'predicted_value'],
      ['churn_lr', 'churn_lr_predict', 'predicted_label::boolean'],
      ['churn_bt', 'churn_bt_predict', 'predicted_label::boolean'],
      ['tier_rf', 'tier_rf_predict', 'predicted_label'],
      ['tier_lr', 'tier_lr_predict', 'predicted_label'],
    ] as const) {
      const [r] = await rows<{ n: string; differ: string }>(
        t.pool,
        `SELECT count(*) AS n, count(*) FILTER (WHERE ${fn}(s.x1, s.x2, s.x3, s.c) IS DISTINCT FROM p.${cast}) AS differ
           FROM ml_predict('${model}', 'SELECT * FROM sup ORDER BY i') p JOIN sup s ON s.i = (p.input ->> 'i')::int`,
      );
      expect(Number(r!.n), model).toBe(3000);
      expect(Number(r!.differ), model).toBe(0);
    }
  });

  it('classifiers return the label\u2019s type, and <function>_probabilities matches predicted_probs and sums to 1', async () => {
    const [type] = await rows<{ t: string }>(t.pool, `SELECT pg_typeof(churn_bt_predict(0.1, 0.2, 0.3, 'a'))::text AS t`);
    expect(type!.t).toBe('boolean');
    const r = await rows<{ probs: { label: string; prob: number }[]; fp: { probabilities: number[]; labels: string[] } }>(
      t.pool,
      `SELECT p.predicted_probs AS probs, tier_rf_predict_probabilities(s.x1, s.x2, s.x3, s.c) AS fp
         FROM ml_predict('tier_rf', 'SELECT * FROM sup WHERE i <= 50') p JOIN sup s ON s.i = (p.input ->> 'i')::int`,
    );
    expect(r).toHaveLength(50);
    for (const x of r) {
      expect(x.fp.labels).toEqual(['high', 'low', 'mid']);
      expect(x.probs.map((p) => p.label)).toEqual(x.fp.labels);
      x.probs.forEach((p, i) => expect(p.prob).toBeCloseTo(x.fp.probabilities[i]!, 12));
      expect(x.fp.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
  });

  it('rows whose label is NULL are not trained on, and are scored', async () => {
    await t.pool.query(`CREATE TABLE sup_nulls AS SELECT i, x1, x2, CASE WHEN i % 3 = 0 THEN NULL ELSE spend END AS spend FROM sup`);
    await train('nulls', 'linear_reg', JSON.stringify({ target: 'spend', exclude: 'i', data_split_method: 'no_split' }), 'SELECT * FROM sup_nulls');
    const [m] = await rows<{ rows: number }>(t.pool, `SELECT (metrics ->> 'rows')::int AS rows FROM ml_models WHERE model_name = 'nulls'`);
    expect(m!.rows).toBe(2000);
    const [p] = await rows<{ n: string }>(t.pool, `SELECT count(predicted_value) AS n FROM ml_predict('nulls', 'SELECT * FROM sup_nulls WHERE spend IS NULL')`);
    expect(Number(p!.n)).toBe(1000);
  });
});

describe('evaluation', () => {
  it('training-time metrics equal the SQL metrics of ml_evaluate on the same evaluation rows', async () => {
    for (const model of ['spend_lin', 'spend_bt', 'churn_lr', 'churn_bt', 'tier_rf', 'tier_lr']) {
      const [stored] = await rows<Record<string, number | null>>(t.pool, `SELECT * FROM ml_evaluate('${model}')`);
      const [sql] = await rows<Record<string, number | null>>(t.pool, `SELECT * FROM ml_evaluate('${model}', 'SELECT * FROM sup WHERE is_eval')`);
      const names = model.startsWith('spend')
        ? ['mean_absolute_error', 'mean_squared_error', 'median_absolute_error', 'r2_score', 'explained_variance']
        : ['precision', 'recall', 'accuracy', 'f1_score', 'log_loss', 'roc_auc'];
      for (const k of names) {
        expect(stored![k], `${model} ${k}`).not.toBeNull();
        expect(sql![k]!, `${model} ${k}`).toBeCloseTo(stored![k]!, 9);
      }
    }
  });

  it('ROC AUC, accuracy and R^2 equal a recomputation from ml_predict\u2019s output', async () => {
    const c = await rows<{ y: boolean; probs: { label: string; prob: number }[]; label: string }>(
      t.pool,
      `SELECT s.churned AS y, p.predicted_probs AS probs, p.predicted_label AS label
         FROM ml_predict('churn_bt', 'SELECT * FROM sup WHERE is_eval') p JOIN sup s ON s.i = (p.input ->> 'i')::int`,
    );
    const positive = c.map((r) => r.y);
    const scores = c.map((r) => r.probs.find((p) => p.label === 'true')!.prob);
    const [e] = await rows<{ roc_auc: number; accuracy: number }>(t.pool, `SELECT roc_auc, accuracy FROM ml_evaluate('churn_bt')`);
    expect(e!.roc_auc).toBeCloseTo(auc(scores, positive), 9);
    expect(e!.accuracy).toBeCloseTo(c.filter((r) => String(r.y) === r.label).length / c.length, 12);
    expect(e!.roc_auc).toBeGreaterThan(0.75);

    const r = await rows<{ y: number; p: number }>(
      t.pool,
      `SELECT s.spend AS y, p.predicted_value AS p FROM ml_predict('spend_bt', 'SELECT * FROM sup WHERE is_eval') p JOIN sup s ON s.i = (p.input ->> 'i')::int`,
    );
    const mean = r.reduce((s, x) => s + x.y, 0) / r.length;
    const r2 = 1 - r.reduce((s, x) => s + (x.y - x.p) ** 2, 0) / r.reduce((s, x) => s + (x.y - mean) ** 2, 0);
    const [b] = await rows<{ r2_score: number }>(t.pool, `SELECT r2_score FROM ml_evaluate('spend_bt')`);
    expect(b!.r2_score).toBeCloseTo(r2, 9);
    // The step in x3 is where trees beat a straight line.
    const [l] = await rows<{ r2_score: number }>(t.pool, `SELECT r2_score FROM ml_evaluate('spend_lin')`);
    expect(b!.r2_score).toBeGreaterThan(0.95);
    expect(l!.r2_score).toBeGreaterThan(0.8);
  });

  it('ml_roc_curve and ml_confusion_matrix count the evaluation rows; a query with thresholds counts as SQL does', async () => {
    const roc = await rows<{ threshold: number; recall: number; true_positives: string; false_positives: string; true_negatives: string; false_negatives: string }>(
      t.pool,
      `SELECT * FROM ml_roc_curve('churn_lr')`,
    );
    expect(roc.length).toBeGreaterThan(10);
    for (const p of roc) expect(Number(p.true_positives) + Number(p.false_positives) + Number(p.true_negatives) + Number(p.false_negatives)).toBe(600);
    for (let i = 1; i < roc.length; i++) expect(roc[i]!.recall).toBeGreaterThanOrEqual(roc[i - 1]!.recall);

    const q = await rows<{ threshold: number; true_positives: string; false_positives: string }>(
      t.pool,
      `SELECT * FROM ml_roc_curve('churn_lr', 'SELECT * FROM sup', ARRAY[0.3, 0.5, 0.7])`,
    );
    expect(q.map((x) => x.threshold)).toEqual([0.7, 0.5, 0.3]);
    for (const x of q) {
      const [c] = await rows<{ tp: string; fp: string }>(
        t.pool,
        `SELECT count(*) FILTER (WHERE churned) AS tp, count(*) FILTER (WHERE NOT churned) AS fp
           FROM sup WHERE (churn_lr_predict_probabilities(x1, x2, x3, c) -> 'probabilities' ->> 1)::float8 >= $1`,
        [x.threshold],
      );
      expect(x.true_positives).toBe(c!.tp);
      expect(x.false_positives).toBe(c!.fp);
    }

    const cm = await rows<{ expected_label: string; predicted_label: string; count: string }>(t.pool, `SELECT * FROM ml_confusion_matrix('tier_lr')`);
    expect(cm).toHaveLength(9);
    const total = cm.reduce((s, r) => s + Number(r.count), 0);
    const right = cm.filter((r) => r.expected_label === r.predicted_label).reduce((s, r) => s + Number(r.count), 0);
    expect(total).toBe(600);
    const [e] = await rows<{ accuracy: number }>(t.pool, `SELECT accuracy FROM ml_evaluate('tier_lr')`);
    expect(right / total).toBeCloseTo(e!.accuracy, 12);
  });
});

describe('auto, importance and explanations', () => {
  it('auto tries every family, reports each in ml_trial_info and serves the best by the objective', async () => {
    await train('churn_auto', 'auto', JSON.stringify({ target: 'churned', exclude: ['i', 'spend', 'tier'], data_split_method: 'custom', data_split_col: 'is_eval', seed: 3 }));
    const trials = await rows<{ trial_id: number; hyperparameters: { model_type: string }; hparam_tuning_evaluation_metrics: { roc_auc: number }; is_optimal: boolean; status: string }>(
      t.pool,
      `SELECT * FROM ml_trial_info('churn_auto')`,
    );
    expect(trials.map((x) => x.hyperparameters.model_type)).toEqual(['logistic_reg', 'boosted_tree_classifier', 'boosted_tree_classifier', 'random_forest_classifier']);
    expect(trials.filter((x) => x.is_optimal)).toHaveLength(1);
    const best = Math.max(...trials.map((x) => x.hparam_tuning_evaluation_metrics.roc_auc));
    expect(trials.find((x) => x.is_optimal)!.hparam_tuning_evaluation_metrics.roc_auc).toBe(best);
    const [e] = await rows<{ roc_auc: number }>(t.pool, `SELECT roc_auc FROM ml_evaluate('churn_auto')`);
    expect(e!.roc_auc).toBe(best);
    // Every candidate scores through its own trial.
    const [p] = await rows<{ n: string }>(t.pool, `SELECT count(predicted_label) AS n FROM ml_predict('churn_auto', 'SELECT * FROM sup LIMIT 10', '{"trial_id": 1}')`);
    expect(Number(p!.n)).toBe(10);
  });

  it('ml_feature_importance ranks the features the label depends on above noise', async () => {
    await t.pool.query(`ALTER TABLE sup ADD COLUMN noise float8`);
    // Seeded (one statement string, one session): an unseeded draw made the ranking of c against
    // x1 in ml_global_explain differ between runs.
    await t.pool.query(`SELECT setseed(0.77); UPDATE sup SET noise = random()`);
    await train('imp_bt', 'boosted_tree_regressor', JSON.stringify({ target: 'spend', exclude: ['i', 'churned', 'tier', 'is_eval'], seed: 1 }));
    await train('imp_lin', 'linear_reg', JSON.stringify({ target: 'spend', exclude: ['i', 'churned', 'tier', 'is_eval'] }));
    for (const model of ['imp_bt', 'imp_lin']) {
      const imp = await rows<{ feature: string; importance: number; importance_weight: number | null }>(t.pool, `SELECT * FROM ml_feature_importance('${model}')`);
      expect(imp.map((r) => r.feature).sort()).toEqual(['c', 'noise', 'x1', 'x2', 'x3']);
      // spend = 5 + 3 x1 - 2 x2 + 4 (x3 > 0) + (2 | -1 | 0 by c): x1 and x3 carry the most.
      expect(imp[imp.length - 1]!.feature, model).toBe('noise');
      expect([imp[0]!.feature, imp[1]!.feature].sort(), model).toEqual(['x1', 'x3']);
    }
  });

  it('ml_explain_predict: linear attributions sum to the prediction minus the baseline', async () => {
    const r = await rows<{ predicted_value: number; prediction_value: number; baseline_prediction_value: number; top_feature_attributions: { feature: string; attribution: number }[] }>(
      t.pool,
      `SELECT * FROM ml_explain_predict('spend_lin', 'SELECT * FROM sup LIMIT 20', '{"top_k_features": 10}')`,
    );
    expect(r).toHaveLength(20);
    for (const x of r) {
      expect(x.top_feature_attributions).toHaveLength(4);
      const sum = x.top_feature_attributions.reduce((s, a) => s + a.attribution, 0);
      expect(x.baseline_prediction_value + sum).toBeCloseTo(x.predicted_value, 9);
      expect(x.prediction_value).toBeCloseTo(x.predicted_value, 9);
    }
    const c = await rows<{ predicted_label: string; probability: number; prediction_value: number; baseline_prediction_value: number; top_feature_attributions: { attribution: number }[] }>(
      t.pool,
      `SELECT * FROM ml_explain_predict('churn_lr', 'SELECT * FROM sup LIMIT 20', '{"top_k_features": 2}')`,
    );
    for (const x of c) {
      expect(x.top_feature_attributions).toHaveLength(2);
      // prediction_value is the logit of the positive class.
      const p = 1 / (1 + Math.exp(-x.prediction_value));
      expect(x.predicted_label === 'true' ? p : 1 - p).toBeCloseTo(x.probability, 9);
    }
  });
});

describe('why a row is in its segment (surrogate tree)', () => {
  it('ml_feature_importance of a k-means model names the column that separates the segments, with its fidelity', async () => {
    await t.pool.query(`CREATE TABLE blobs AS SELECT i, (i % 3) * 5 + random() AS sep, random() AS flat, (ARRAY['p', 'q'])[1 + (i % 2)] AS tag
                          FROM generate_series(1, 900) i`);
    await train('blob_seg', 'kmeans', JSON.stringify({ num_clusters: 3, exclude: 'i', seed: 1, standardize_features: false }), 'SELECT * FROM blobs');
    const imp = await rows<{ feature: string; importance: number }>(t.pool, `SELECT * FROM ml_feature_importance('blob_seg')`);
    expect(imp[0]!.feature).toBe('sep');
    expect(imp[0]!.importance).toBeGreaterThan(10 * imp[1]!.importance);
    const [m] = await rows<{ f: number }>(t.pool, `SELECT (metrics ->> 'surrogate_fidelity')::float8 AS f FROM ml_models WHERE model_name = 'blob_seg'`);
    expect(m!.f).toBeGreaterThan(0.95);
  });
});

describe('tree explanations (TreeSHAP in PL/pgSQL)', () => {
  it('attributions add up to the prediction minus the baseline, for regression, binary and multiclass trees', async () => {
    for (const model of ['spend_bt', 'churn_bt', 'tier_rf']) {
      const r = await rows<{ predicted_value: number | null; probability: number | null; prediction_value: number; baseline_prediction_value: number; top_feature_attributions: { attribution: number }[] }>(
        t.pool,
        `SELECT * FROM ml_explain_predict('${model}', 'SELECT * FROM sup WHERE i <= 8', '{"top_k_features": 10}')`,
      );
      expect(r, model).toHaveLength(8);
      for (const x of r) {
        expect(x.top_feature_attributions).toHaveLength(4);
        const sum = x.top_feature_attributions.reduce((s, a) => s + a.attribution, 0);
        expect(x.baseline_prediction_value + sum, model).toBeCloseTo(x.prediction_value, 9);
        if (x.predicted_value !== null) expect(x.prediction_value).toBeCloseTo(x.predicted_value, 9);
      }
    }
    // Binary: the margin is the positive class's logit.
    const [b] = await rows<{ prediction_value: number; probability: number; predicted_label: string }>(
      t.pool,
      `SELECT * FROM ml_explain_predict('churn_bt', 'SELECT * FROM sup WHERE i = 7')`,
    );
    const p = 1 / (1 + Math.exp(-b!.prediction_value));
    expect(b!.predicted_label === 'true' ? p : 1 - p).toBeCloseTo(b!.probability, 9);
  });

  it('the SQL TreeSHAP equals the sidecar\u2019s (checked against brute-force Shapley values in test/shap.test.ts)', async () => {
    const [m] = await rows<{ artifact: { ensemble: Pick<Ensemble, 'base'>; explanation: { forest: FlatForest }; features: { name: string; offset: number }[]; dims: number } }>(
      t.pool,
      `SELECT artifact FROM ml.models WHERE model_name = 'spend_bt'`,
    );
    const [{ id }] = await rows<{ id: string }>(t.pool, `SELECT id::text FROM ml.models WHERE model_name = 'spend_bt'`);
    const r = await rows<{ v: number[]; att: { feature: string; attribution: number }[] }>(
      t.pool,
      `SELECT ml."m${id}_vector"(s.x1, s.x2, s.x3, s.c) AS v, e.top_feature_attributions AS att
         FROM ml_explain_predict('spend_bt', 'SELECT * FROM sup WHERE i <= 5 ORDER BY i', '{"top_k_features": 10}') e
         JOIN sup s ON s.i = (e.input ->> 'i')::int`,
    );
    expect(r).toHaveLength(5);
    const a = m!.artifact;
    for (const x of r) {
      // The stored trees are the forest the SQL walks (the artifact keeps them once).
      const phi = ensembleShap(unflatten(a.explanation.forest, a.ensemble.base), Float64Array.from(x.v), 0, a.dims, 0);
      for (const f of a.features) {
        const sql = x.att.find((y) => y.feature === f.name)!.attribution;
        expect(sql, f.name).toBeCloseTo(phi[f.offset]!, 9);
      }
    }
  });

  it('ml_global_explain ranks features by mean |attribution|, per class for multiclass models', async () => {
    const g = await rows<{ feature: string; attribution: number }>(t.pool, `SELECT feature, attribution FROM ml_global_explain('imp_bt')`);
    expect(g[g.length - 1]!.feature).toBe('noise');
    expect([g[0]!.feature, g[1]!.feature].sort()).toEqual(['x1', 'x3']);
    const c = await rows<{ class_label: string }>(t.pool, `SELECT class_label FROM ml_global_explain('tier_rf', '{"class_level_explain": true}')`);
    expect(new Set(c.map((x) => x.class_label))).toEqual(new Set(['high', 'low', 'mid']));
    expect(c).toHaveLength(12);
  });
});

describe('options and errors', () => {
  it('class weights move predictions toward the heavier class', async () => {
    await train('cw', 'logistic_reg', JSON.stringify({ target: 'churned', exclude: ['i', 'spend', 'tier', 'noise', 'is_eval'], class_weights: { true: 5, false: 1 } }));
    const [r] = await rows<{ plain: string; weighted: string }>(
      t.pool,
      `SELECT count(*) FILTER (WHERE churn_lr_predict(x1, x2, x3, c)) AS plain, count(*) FILTER (WHERE cw_predict(x1, x2, x3, c)) AS weighted FROM sup`,
    );
    expect(Number(r!.weighted)).toBeGreaterThan(Number(r!.plain) + 100);
  });

  it('seq split evaluates on the last rows of the ordering column', async () => {
    await train('seq', 'linear_reg', JSON.stringify({ target: 'spend', exclude: ['i', 'churned', 'tier', 'noise', 'is_eval'], data_split_method: 'seq', data_split_col: 'i', data_split_eval_fraction: 0.25 }));
    const [m] = await rows<{ e: number; r2: number }>(t.pool, `SELECT (metrics ->> 'evaluation_rows')::int AS e, (metrics ->> 'r2_score')::float8 AS r2 FROM ml_models WHERE model_name = 'seq'`);
    expect(m!.e).toBe(750);
    const [s] = await rows<{ r2_score: number }>(t.pool, `SELECT r2_score FROM ml_evaluate('seq', 'SELECT * FROM sup WHERE i > 2250')`);
    expect(s!.r2_score).toBeCloseTo(m!.r2, 9);
  });

  it('bad requests fail at once or as a failed job with a specific message', async () => {
    expect((await errorOf(t.pool, `SELECT ml_create_model('x', 'boosted_tree_classifier', 'SELECT 1', '{"num_clusters": 3}')`)).message).toMatch(
      /unknown option "num_clusters" for model_type boosted_tree_classifier/,
    );
    expect((await errorOf(t.pool, `SELECT ml_create_model('x', 'logistic_reg', 'SELECT 1', '{"target": "a", "input_label_cols": ["a"]}')`)).message).toMatch(/not both/);
    expect((await errorOf(t.pool, `SELECT ml_create_model('x', 'linear_reg', 'SELECT 1', '{"data_split_method": "custom"}')`)).message).toMatch(/needs option "data_split_col"/);
    expect((await errorOf(t.pool, `SELECT ml_create_model('x', 'linear_reg', 'SELECT 1', '{"class_weights": {"a": 1}}')`)).message).toMatch(/unknown option "class_weights"/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_predict('spend_lin', 'SELECT * FROM sup', '{"threshold": 0.3}')`)).message).toMatch(/binary classification models only/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_evaluate('spend_lin', 'SELECT x1, x2, x3, c FROM sup')`)).message).toMatch(/no column "spend", the label/);
    expect((await errorOf(t.pool, `SELECT * FROM ml_roc_curve('tier_lr')`)).message).toMatch(/binary classification/);

    const failures: [string, string, Record<string, unknown>, RegExp][] = [
      ['linear_reg', Q, { target: 'tier', exclude: ['i'] }, /label column "tier" has type text, but linear_reg predicts a number/],
      ['logistic_reg', 'SELECT x1, true AS y FROM sup', { target: 'y' }, /single value \(true\)/],
      ['logistic_reg', Q, { target: 'churned', exclude: ['i'], class_weights: { true: 2 } }, /every class; missing: false/],
      ['linear_reg', Q, { target: 'nope' }, /column "nope" named by "input_label_cols" is not in the training query/],
      ['linear_reg', 'SELECT x1, spend FROM sup WHERE false', { target: 'spend' }, /no rows with a non-NULL label "spend"/],
    ];
    for (const [type, query, options, message] of failures) {
      const [j] = await rows<{ job: string }>(t.pool, `SELECT ml_create_model('bad', $1, $2, $3) AS job`, [type, query, JSON.stringify(options)]);
      const err = await errorOf(t.pool, `SELECT ml_wait($1)`, [j!.job]);
      expect(err.message).toMatch(message);
      const [s] = await rows<{ status: string }>(t.pool, `SELECT status FROM ml_jobs WHERE id = $1`, [j!.job]);
      expect(s!.status).toBe('failed');
    }
  });
});
