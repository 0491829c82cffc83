import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { to as copyTo } from 'pg-copy-streams';
import type { BenchDb } from './lib.ts';
import { fmt, secondsToReady, sklearnAvailable, startSidecar } from './lib.ts';

// Supervised models against scikit-learn on the same rows and the same split (every 5th row
// evaluates): 12 numeric and 4 categorical columns with a non-linear signal.
//   quality: ROC AUC of boosted_tree_classifier vs HistGradientBoostingClassifier() and of
//            logistic_reg vs LogisticRegression() (standardized, one-hot), R^2 of
//            boosted_tree_regressor vs HistGradientBoostingRegressor(); auto vs the best family.
//   speed:   boosted tree training end to end (ml_create_model -> ready, data read included)
//            vs scikit-learn's fit alone, on the data already in memory.

export interface SupervisedCase {
  name: string;
  metric: 'roc_auc' | 'r2_score';
  ours: number;
  sklearn: number | null;
  oursSeconds: number; // ml_create_model -> ready
  fitSeconds: number; // the sidecar's feature preparation, binning and training (as scikit-learn's fit)
  sklearnSeconds: number | null;
}

const NUMERIC = Array.from({ length: 12 }, (_, j) => `x${j + 1}`);


export async function makeSupervisedData(db: BenchDb, table: string, rows: number): Promise<void> {
  const normal = 'sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())';
  await db.pool.query(`DROP TABLE IF EXISTS ${table}`);
  await db.pool.query(`SELECT setseed(0.42)`);
  await db.pool.query(`
    CREATE UNLOGGED TABLE ${table} AS
    SELECT s.*, (s.i % 5 = 0) AS is_eval,
           (random() < 1 / (1 + exp(-(1.2 * x1 - 0.8 * x2 + 0.6 * x3 * x4 + (x5 > 0.5)::int - 0.5 + 0.8 * sin(2 * x6)
                                       + CASE c1 WHEN 'a' THEN 0.7 WHEN 'b' THEN -0.4 ELSE 0 END + 0.3 * (c2 = 'k2')::int)))) AS churned,
           3 * x1 + 2 * x2 * x2 - 1.5 * x3 * x4 + 2 * (c1 = 'a')::int + abs(x7) + ${normal} AS ltv
    FROM (SELECT i, ${NUMERIC.map((c) => `${normal} AS ${c}`).join(', ')},
                 (ARRAY['a', 'b', 'c'])[1 + floor(random() * 3)::int] AS c1,
                 'k' || floor(random() * 5)::int AS c2,
                 'r' || floor(random() * 8)::int AS c3,
                 (ARRAY['x', 'y'])[1 + floor(random() * 2)::int] AS c4
            FROM generate_series(1, ${rows}) i) s`);
  await db.pool.query(`VACUUM ANALYZE ${table}`);
}

async function train(db: BenchDb, name: string, type: string, table: string, label: string, drop: string): Promise<{ seconds: number; fitSeconds: number; metric: number }> {
  const options = { input_label_cols: [label], exclude: ['i', drop], data_split_method: 'custom', data_split_col: 'is_eval', seed: 1 };
  const s = await secondsToReady(db, `SELECT ml_create_model($1, $2, $3, $4) AS job`, [name, type, `SELECT * FROM ${table}`, JSON.stringify(options)]);
  const { rows } = await db.pool.query(
    `SELECT roc_auc, r2_score, (m.metrics->>'prepare_seconds')::float8 + (m.metrics->>'train_seconds')::float8 AS fit
       FROM ml_evaluate($1), ml_models m WHERE m.model_name = $1 ORDER BY m.version DESC LIMIT 1`,
    [name],
  );
  return { seconds: s, fitSeconds: rows[0].fit, metric: label === 'churned' ? rows[0].roc_auc : rows[0].r2_score };
}

const SKLEARN = String.raw`
import csv, sys, time, json
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, r2_score
path = sys.argv[1]
rows = list(csv.reader(open(path)))
head, rows = rows[0], rows[1:]
col = {h: i for i, h in enumerate(head)}
num = [h for h in head if h.startswith('x')]
cat = [h for h in head if h.startswith('c') and h != 'churned']
Xn = np.array([[float(r[col[h]]) for h in num] for r in rows])
codes = []
onehot = []
for h in cat:
    levels = sorted(set(r[col[h]] for r in rows))
    codes.append([levels.index(r[col[h]]) for r in rows])
    onehot.append(np.array([[1.0 if r[col[h]] == l else 0.0 for l in levels] for r in rows]))
Xo = np.column_stack([Xn] + [np.array(c) for c in codes])
ev = np.array([r[col['is_eval']] == 't' for r in rows])
yc = np.array([r[col['churned']] == 't' for r in rows]).astype(int)
yr = np.array([float(r[col['ltv']]) for r in rows])
out = {}
t = time.perf_counter(); m = HistGradientBoostingClassifier().fit(Xo[~ev], yc[~ev]); out['hgb_c_s'] = time.perf_counter() - t
out['hgb_auc'] = roc_auc_score(yc[ev], m.predict_proba(Xo[ev])[:, 1])
t = time.perf_counter(); m = HistGradientBoostingRegressor().fit(Xo[~ev], yr[~ev]); out['hgb_r_s'] = time.perf_counter() - t
out['hgb_r2'] = r2_score(yr[ev], m.predict(Xo[ev]))
mu, sd = Xn[~ev].mean(0), Xn[~ev].std(0)
Xl = np.column_stack([(Xn - mu) / sd] + onehot)
t = time.perf_counter(); m = LogisticRegression(max_iter=1000).fit(Xl[~ev], yc[~ev]); out['lr_s'] = time.perf_counter() - t
out['lr_auc'] = roc_auc_score(yc[ev], m.predict_proba(Xl[ev])[:, 1])
print(json.dumps(out))
`;

export async function benchSupervised(db: BenchDb, o: { rows: number; sklearn?: boolean; rounds?: number }): Promise<SupervisedCase[]> {
  const ROUNDS = o.rounds ?? 3;
  const table = `bench_supervised_${o.rows}`;
  await makeSupervisedData(db, table, o.rows);
  const withSklearn = o.sklearn !== false && sklearnAvailable();
  let runSklearn = (): Record<string, number> | null => null;
  const scratch = withSklearn ? mkdtempSync(join(tmpdir(), 'sqlml-bench-')) : null;
  if (scratch) {
    const csv = join(scratch, `${table}.csv`);
    const client = await db.pool.connect();
    try {
      await pipeline(client.query(copyTo(`COPY (SELECT * FROM ${table}) TO STDOUT (FORMAT csv, HEADER true)`)), createWriteStream(csv));
    } finally {
      client.release();
    }
    runSklearn = () => JSON.parse(execFileSync('/usr/bin/python3', ['-c', SKLEARN, csv], { encoding: 'utf8', maxBuffer: 1 << 26 }));
  }
  const sidecar = await startSidecar(db);
  let cold, lr, auto;
  // Rounds of (our classifier, our regressor, scikit-learn's fits), interleaved, and the medians:
  // this machine's speed drifts by 30% over tens of seconds, so one run of each side alone
  // swung the ratio by as much.
  const bt: Awaited<ReturnType<typeof train>>[] = [];
  const br: Awaited<ReturnType<typeof train>>[] = [];
  const sk: Record<string, number>[] = [];
  try {
    // The first job of a fresh sidecar also pays V8's warm-up; a running sidecar does not.
    cold = await train(db, `bench_btc_${o.rows}`, 'boosted_tree_classifier', table, 'churned', 'ltv');
    for (let r = 0; r < ROUNDS; r++) {
      bt.push(await train(db, `bench_btc_${o.rows}`, 'boosted_tree_classifier', table, 'churned', 'ltv'));
      br.push(await train(db, `bench_btr_${o.rows}`, 'boosted_tree_regressor', table, 'ltv', 'churned'));
      const one = runSklearn();
      if (one) sk.push(one);
    }
    lr = await train(db, `bench_lr_${o.rows}`, 'logistic_reg', table, 'churned', 'ltv');
    auto = await train(db, `bench_auto_${o.rows}`, 'auto', table, 'churned', 'ltv');
  } finally {
    sidecar.kill('SIGTERM');
    await sidecar.exited();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const ours = (runs: typeof bt) => ({ metric: runs[0]!.metric, seconds: med(runs.map((x) => x.seconds)), fitSeconds: med(runs.map((x) => x.fitSeconds)) });
  const theirs = (key: string) => (sk.length ? med(sk.map((x) => x[key]!)) : null);
  const c = ours(bt);
  const rg = ours(br);
  return [
    { name: 'boosted_tree_classifier (first job of a fresh sidecar) vs HistGradientBoostingClassifier', metric: 'roc_auc', ours: cold.metric, sklearn: theirs('hgb_auc'), oursSeconds: cold.seconds, fitSeconds: cold.fitSeconds, sklearnSeconds: theirs('hgb_c_s') },
    { name: `boosted_tree_classifier vs HistGradientBoostingClassifier (medians of ${ROUNDS})`, metric: 'roc_auc', ours: c.metric, sklearn: theirs('hgb_auc'), oursSeconds: c.seconds, fitSeconds: c.fitSeconds, sklearnSeconds: theirs('hgb_c_s') },
    { name: 'logistic_reg vs LogisticRegression', metric: 'roc_auc', ours: lr.metric, sklearn: theirs('lr_auc'), oursSeconds: lr.seconds, fitSeconds: lr.fitSeconds, sklearnSeconds: theirs('lr_s') },
    { name: `boosted_tree_regressor vs HistGradientBoostingRegressor (medians of ${ROUNDS})`, metric: 'r2_score', ours: rg.metric, sklearn: theirs('hgb_r2'), oursSeconds: rg.seconds, fitSeconds: rg.fitSeconds, sklearnSeconds: theirs('hgb_r_s') },
    { name: 'auto (classification) vs the best single family', metric: 'roc_auc', ours: auto.metric, sklearn: Math.max(c.metric, lr.metric), oursSeconds: auto.seconds, fitSeconds: auto.fitSeconds, sklearnSeconds: null },
  ];
}

export function printSupervised(rows: number, cases: SupervisedCase[]): void {
  console.log(`\nsupervised models, ${rows} rows x 16 columns (12 numeric, 4 categorical), every 5th row evaluates`);
  for (const c of cases) {
    const diff = c.sklearn === null ? 'skipped' : `${c.ours - c.sklearn >= 0 ? '+' : ''}${fmt(c.ours - c.sklearn, 4)}`;
    const speed =
      c.sklearnSeconds === null
        ? ''
        : `; fit ${fmt(c.fitSeconds)} s vs ${fmt(c.sklearnSeconds)} s fit (ratio ${fmt(c.fitSeconds / c.sklearnSeconds)}); end to end ${fmt(c.oursSeconds)} s (ratio ${fmt(c.oursSeconds / c.sklearnSeconds)})`;
    console.log(`  ${c.name}: ${c.metric} ${fmt(c.ours, 4)} vs ${c.sklearn === null ? 'n/a' : fmt(c.sklearn, 4)} (difference ${diff})${speed}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { benchDatabase } = await import('./lib.ts');
  const db = await benchDatabase();
  const rows = process.argv.includes('--quick') ? 5000 : 40_000;
  try {
    printSupervised(rows, await benchSupervised(db, { rows }));
  } finally {
    await db.close();
  }
}
