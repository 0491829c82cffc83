import type { ClientBase } from 'pg';
import { messageOf } from '../util/errors.ts';
import { bars, groupedBars, heatmap, histogram, lines, render, scatter } from './charts.ts';
import { esc, figure, note, page, table, type Section } from './html.ts';

// A model's report, made through the public SQL API on the caller's connection: what the
// caller's role may see is what the report shows (row-level security on models). The rows it
// draws come from the training query only when the caller is the role that wrote it (another
// role's text is never run for the viewer), else from a query the caller passes. One section per topic; a chart whose data is unavailable
// becomes a note instead of failing the page.

type Row = Record<string, unknown>;

export interface ReportOptions {
  /** The rows to draw and profile (default: the training query, when the caller may see it). */
  query?: string;
  /** Rows in the segment scatter (a random sample). */
  sampleRows?: number;
  /** Extra trusted HTML above the title (the console's navigation). */
  nav?: string;
}

export class ModelNotVisible extends Error {}

interface ModelRow {
  model_name: string;
  version: number;
  model_type: string;
  state: string;
  options: Row;
  metrics: Row | null;
  owner: string;
  created_at: Date;
  trained_at: Date | null;
  error: string | null;
  function_name: string | null;
  job_id: string | null;
}

/** `name` (latest ready version) or `name@N`. */
export function parseModelSpec(spec: string): { name: string; version: number | null } {
  const m = /^(.*)@(\d+)$/.exec(spec);
  return m ? { name: m[1]!, version: Number(m[2]) } : { name: spec, version: null };
}

export async function modelReport(client: ClientBase, spec: string, o: ReportOptions = {}): Promise<string> {
  const { name, version } = parseModelSpec(spec);
  const { rows } = await client.query<ModelRow>(
    `SELECT * FROM ml_models WHERE model_name = $1 AND ($2::int IS NULL AND state = 'ready' OR version = $2::int) ORDER BY version DESC LIMIT 1`,
    [name, version],
  );
  const model = rows[0];
  if (!model) throw new ModelNotVisible(`model "${spec}" does not exist, has no ready version, or your role may not see it`);
  if (model.state !== 'ready') throw new ModelNotVisible(`model "${spec}" is ${model.state}${model.error ? `: ${model.error}` : ''}`);
  const ref = `${model.model_name}@${model.version}`;
  const ctx = new Gatherer(client, ref);
  const query = o.query ?? (await ctx.trainingQuery(model.job_id));
  const sections: Section[] = [];
  const family = model.model_type;
  if (family === 'kmeans' || family === 'hdbscan') sections.push(...(await clusteringSections(ctx, model, query, o.sampleRows ?? 2000)));
  else if (family === 'pca') sections.push(...(await pcaSections(ctx, query, o.sampleRows ?? 2000)));
  else if (family === 'clv') sections.push(...(await clvSections(ctx, query)));
  else sections.push(...(await supervisedSections(ctx, model, query, o.sampleRows ?? 1000)));
  sections.push(...(await commonSections(ctx, model, query)));
  const m = model.metrics ?? {};
  const subtitle = `${family} model, version ${model.version}, owner ${model.owner}, trained ${model.trained_at?.toISOString().slice(0, 19).replace('T', ' ') ?? ''} UTC on ${family === 'clv' ? `${m.customers} customers` : `${m.rows} rows`}`;
  return page(`${model.model_name}`, subtitle, sections, { nav: o.nav });
}

/** Runs the report's queries; a failing one is recorded as a note for its section. */
class Gatherer {
  constructor(readonly client: ClientBase, readonly ref: string) {}

  async rows(sql: string, params: unknown[] = []): Promise<Row[] | string> {
    try {
      await this.client.query('SAVEPOINT report_part');
      const r = await this.client.query(sql, params);
      await this.client.query('RELEASE SAVEPOINT report_part');
      return r.rows as Row[];
    } catch (err) {
      await this.client.query('ROLLBACK TO SAVEPOINT report_part').catch(() => undefined);
      return messageOf(err);
    }
  }

  /**
   * The training query, only when the viewer is the very role that wrote it: a text another
   * role wrote is never run for the viewer (a superuser or a member role sees it in ml_jobs, and
   * running it would run its author's functions with the viewer's rights).
   */
  async trainingQuery(jobId: string | null): Promise<string | undefined> {
    if (!jobId) return undefined;
    const r = await this.rows('SELECT training_query FROM ml_jobs WHERE id = $1 AND requested_by = current_user', [jobId]);
    return typeof r === 'string' ? undefined : ((r[0]?.training_query as string | undefined) ?? undefined);
  }
}

async function chart(name: string, data: Row[] | string, build: (rows: Row[]) => Parameters<typeof render>[0] | null, what: string): Promise<string> {
  if (typeof data === 'string') return note(`${what}: not available (${data})`);
  if (!data.length) return note(`${what}: no data`);
  const spec = build(data);
  return spec ? figure(await render(spec), name) : note(`${what}: no data`);
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const noQuery = (what: string) => note(`${what}: needs the rows; the training query is run only for the role that wrote it (pass --query to draw your own)`);

async function clusteringSections(ctx: Gatherer, model: ModelRow, query: string | undefined, sample: number): Promise<Section[]> {
  const out: Section[] = [];
  const density = model.model_type === 'hdbscan';
  const metrics = model.metrics ?? {};
  // sizes: the last iteration's cluster sizes (k-means), else the profile's segment sizes
  const profile = query ? await ctx.rows('SELECT * FROM ml_profile_model($1, $2)', [ctx.ref, query]) : 'no query';
  let sizes: Row[] | string = 'no query';
  if (typeof profile !== 'string') {
    const seen = new Map<string, number>();
    for (const p of profile) seen.set(String(p.segment), Number(p.segment_size));
    sizes = [...seen].map(([segment, size]) => ({ segment: segment === '-1' ? 'noise' : segment, size })).sort((a, b) => order(a.segment) - order(b.segment));
  } else if (!density) {
    const info = await ctx.rows('SELECT cluster_info FROM ml_training_info($1) ORDER BY training_run DESC, iteration DESC LIMIT 1', [ctx.ref]);
    if (typeof info !== 'string' && Array.isArray(info[0]?.cluster_info)) {
      sizes = (info[0]!.cluster_info as Row[]).map((c) => ({ segment: String(c.centroid_id), size: Number(c.cluster_size) }));
    }
  }
  const headline = [
    { metric: 'clusters', value: metrics.num_clusters },
    { metric: 'rows', value: metrics.rows },
    { metric: 'Davies–Bouldin index', value: metrics.davies_bouldin_index },
    { metric: 'silhouette', value: metrics.silhouette_score },
    { metric: 'stability (ARI of reruns)', value: metrics.stability },
    ...(density ? [{ metric: 'noise share', value: metrics.noise_fraction }, { metric: 'DBCV', value: metrics.dbcv }] : []),
  ].filter((r) => r.value !== undefined && r.value !== null);
  out.push({
    title: 'Segments',
    blocks: [
      await chart('cluster-sizes', sizes, (r) => bars('Cluster sizes', r, 'segment', 'size', { xTitle: density ? 'cluster (noise = outside every cluster)' : 'centroid_id', yTitle: 'rows' }), 'cluster sizes'),
      table(headline, ['metric', 'value'], 'Quality'),
    ],
  });
  // the k sweep
  const trials = await ctx.rows('SELECT * FROM ml_trial_info($1) ORDER BY trial_id', [ctx.ref]);
  if (typeof trials !== 'string' && trials.length > 1) {
    const pts = trials.filter((t) => t.status === 'succeeded').map((t) => ({
      k: Number((t.hyperparameters as Row).num_clusters),
      davies_bouldin_index: num(t.davies_bouldin_index),
      mean_squared_distance: num(t.mean_squared_distance),
      silhouette_score: num(t.silhouette_score),
      elbow: t.is_elbow === true,
      chosen: t.is_optimal === true,
    }));
    out.push({
      title: 'Choosing k',
      blocks: [
        await chart('k-sweep-db', pts, (r) => lines('Davies–Bouldin index by k (lower is better)', r.map((p) => ({ ...p, marked: p.chosen ? 'chosen' : null })), 'k', 'davies_bouldin_index', { yTitle: 'Davies–Bouldin index', integerX: true }), 'Davies–Bouldin curve'),
        await chart('k-sweep-elbow', pts, (r) => lines('Mean squared distance by k (elbow marked)', r.map((p) => ({ ...p, marked: p.elbow ? 'elbow' : null })), 'k', 'mean_squared_distance', { yTitle: 'mean squared distance', integerX: true }), 'elbow curve'),
        ...(pts.some((p) => p.silhouette_score !== null)
          ? [await chart('k-sweep-silhouette', pts.filter((p) => p.silhouette_score !== null), (r) => lines('Silhouette by k (higher is better)', r, 'k', 'silhouette_score', { yTitle: 'silhouette', integerX: true }), 'silhouette curve')]
          : []),
      ],
    });
  }
  // the scatter
  const blocks: string[] = [];
  if (query) {
    const points = await ctx.rows('SELECT x, y, centroid_id, membership_probability FROM ml_project($1, $2, $3)', [ctx.ref, query, JSON.stringify({ max_rows: sample })]);
    const centres = await ctx.rows('SELECT x, y, centroid_id FROM ml_project($1)', [ctx.ref]);
    blocks.push(await chart('segment-scatter', points, (r) => scatter(`Segments in two dimensions (${r.length.toLocaleString('en-US')} sampled rows)`, r.map((p) => ({ x: p.x, y: p.y, segment: p.centroid_id === -1 ? 'noise' : String(p.centroid_id) })), {
      x: 'x', y: 'y', color: 'segment', xTitle: 'first principal component', yTitle: 'second principal component',
      centres: typeof centres === 'string' ? [] : centres, centreMark: density ? 'diamond' : 'cross', subtitle: density ? 'diamonds: exemplars (the most central members)' : 'crosses: centroids',
    }), 'segment scatter'));
    if (density) {
      blocks.push(await chart('membership', typeof points === 'string' ? points : points.filter((p) => p.centroid_id !== -1), (r) => histogram(
        'Membership probability of the rows in a cluster', r.map((p) => ({ membership: num(p.membership_probability) })), 'membership',
        { xTitle: 'membership probability (1 = at the densest scale of its cluster)', subtitle: 'the sampled rows that a cluster takes' },
      ), 'membership'));
    }
  } else blocks.push(noQuery('segment scatter'));
  // profile heat map
  if (typeof profile !== 'string') blocks.push(await chart('profile-heatmap', profileCells(profile), (r) => heatmap('Profile: how each segment differs from all rows', r, {
    x: 'feature', y: 'segment', value: 'index', label: 'index', diverging: true, format: '+.0%', subtitle: 'index = segment value / overall value − 1 (numeric: mean; category: share)',
  }), 'profile heat map'));
  else blocks.push(query ? note(`profile heat map: not available (${profile})`) : noQuery('profile heat map'));
  out.push({ title: 'Where the segments lie and who is in them', blocks });
  const centroids = await ctx.rows('SELECT centroid_id, feature, numerical_value, categorical_value FROM ml_centroids($1) ORDER BY centroid_id, feature', [ctx.ref]);
  if (typeof centroids !== 'string') out.push({ title: density ? 'Cluster means (original units)' : 'Centroids (original units)', blocks: [table(pivotCentroids(centroids))] });
  return out;
}

const order = (s: string) => (s === 'noise' ? 1e9 : Number(s));

/** Segment × feature cells: numeric features, and each categorical feature's three most common categories. */
function profileCells(profile: Row[]): Row[] {
  const common = new Map<string, { category: string; share: number }[]>();
  for (const p of profile) {
    if (p.category === null) continue;
    const f = String(p.feature);
    const list = common.get(f) ?? [];
    if (!list.some((c) => c.category === p.category)) list.push({ category: String(p.category), share: Number(p.baseline_value) });
    common.set(f, list);
  }
  const top = new Set<string>();
  for (const [f, list] of common) for (const c of list.sort((a, b) => b.share - a.share).slice(0, 3)) top.add(`${f}=${c.category}`);
  return profile
    .filter((p) => p.index !== null && (p.category === null || top.has(`${p.feature}=${p.category}`)))
    .map((p) => ({
      segment: p.segment === '-1' ? 'noise' : String(p.segment),
      feature: p.category === null ? String(p.feature) : `${p.feature}=${p.category}`,
      index: Math.max(-1, Math.min(3, Number(p.index))),
    }))
    .sort((a, b) => order(a.segment) - order(b.segment));
}

function pivotCentroids(rows: Row[]): Row[] {
  const byId = new Map<number, Row>();
  for (const r of rows) {
    const id = Number(r.centroid_id);
    const row = byId.get(id) ?? { centroid_id: id };
    const cats = r.categorical_value as { category: string; value: number }[] | null;
    row[String(r.feature)] = cats
      ? cats.slice().sort((a, b) => b.value - a.value).slice(0, 2).map((c) => `${c.category} ${(c.value * 100).toFixed(0)}%`).join(', ')
      : r.numerical_value;
    byId.set(id, row);
  }
  return [...byId.values()];
}

async function supervisedSections(ctx: Gatherer, model: ModelRow, query: string | undefined, sample: number): Promise<Section[]> {
  const out: Section[] = [];
  const metrics = model.metrics ?? {};
  const regression = metrics.r2_score !== undefined && metrics.r2_score !== null;
  const evalRows = await ctx.rows('SELECT * FROM ml_evaluate($1)', [ctx.ref]);
  if (typeof evalRows !== 'string' && evalRows[0]) {
    const e = evalRows[0];
    const keys = regression
      ? ['mean_absolute_error', 'mean_squared_error', 'median_absolute_error', 'r2_score', 'explained_variance']
      : ['precision', 'recall', 'accuracy', 'f1_score', 'log_loss', 'roc_auc'];
    out.push({ title: 'Evaluation', blocks: [table(keys.filter((k) => e[k] !== null).map((k) => ({ metric: k, value: e[k] })), ['metric', 'value'], 'On the evaluation split')] });
  }
  const blocks: string[] = [];
  if (!regression) {
    const roc = await ctx.rows('SELECT recall, false_positive_rate FROM ml_roc_curve($1)', [ctx.ref]);
    if (typeof roc === 'string' && /binary classification/.test(roc)) {
      // multiclass: no ROC; the confusion matrix follows
    } else {
      blocks.push(await chart('roc-curve', roc, (r) => lines('ROC curve', withEnds(r, 'false_positive_rate', 'recall'), 'false_positive_rate', 'recall', { xTitle: 'false positive rate', yTitle: 'true positive rate (recall)', diagonal: true, xZero: true, subtitle: metrics.roc_auc !== undefined ? `AUC ${Number(metrics.roc_auc).toFixed(3)}` : undefined }), 'ROC curve'));
      const pr = await ctx.rows('SELECT recall, "precision" FROM ml_pr_curve($1)', [ctx.ref]);
      blocks.push(await chart('pr-curve', pr, (r) => lines('Precision–recall', r, 'recall', 'precision', { xZero: true }), 'precision–recall curve'));
      const lift = await ctx.rows('SELECT decile, lift, cumulative_gain FROM ml_lift_curve($1)', [ctx.ref]);
      blocks.push(await chart('lift', lift, (r) => bars('Lift by decile (highest scores first)', r, 'decile', 'lift', { yTitle: 'lift (response rate / overall)' }), 'lift'));
      blocks.push(await chart('gain', lift, (r) => lines('Cumulative gain', [{ share: 0, cumulative_gain: 0 }, ...r.map((d) => ({ share: Number(d.decile) / 10, cumulative_gain: d.cumulative_gain }))], 'share', 'cumulative_gain', { xTitle: 'share of rows contacted (highest scores first)', yTitle: 'share of positives found', diagonal: true, xZero: true }), 'cumulative gain'));
    }
    const cm = await ctx.rows('SELECT expected_label, predicted_label, count FROM ml_confusion_matrix($1)', [ctx.ref]);
    blocks.push(await chart('confusion-matrix', cm, (r) => heatmap('Confusion matrix', r.map((c) => ({ ...c, count: Number(c.count) })), { x: 'predicted_label', y: 'expected_label', value: 'count', format: 'd', xTitle: 'predicted', yTitle: 'actual' }), 'confusion matrix'));
  } else if (query) {
    const pa = await ctx.rows('SELECT actual, predicted FROM ml_predicted_vs_actual($1, $2, $3)', [ctx.ref, query, JSON.stringify({ max_rows: sample })]);
    blocks.push(await chart('predicted-vs-actual', pa, (r) => scatter(`Predicted vs actual (${r.length.toLocaleString('en-US')} sampled rows)`, r.map((p) => ({ ...p, all: 'rows' })), { x: 'actual', y: 'predicted', color: 'all' }), 'predicted vs actual'));
  } else blocks.push(noQuery('predicted vs actual'));
  const cal = await ctx.rows('SELECT bin, mean_predicted, observed FROM ml_calibration_curve($1)', [ctx.ref]);
  if (!(typeof cal === 'string' && /is for binary classification and regression/.test(cal))) {
    blocks.push(await chart('calibration', cal, (r) => lines('Calibration by decile', r, 'mean_predicted', 'observed', { xTitle: 'mean predicted', yTitle: regression ? 'mean actual' : 'observed rate', diagonal: !regression }), 'calibration'));
  }
  out.push({ title: 'How well it predicts', blocks });
  const imp = await ctx.rows('SELECT feature, importance FROM ml_feature_importance($1) ORDER BY importance DESC LIMIT 25', [ctx.ref]);
  const shap = await ctx.rows('SELECT feature, avg(attribution) AS attribution FROM ml_global_explain($1) GROUP BY feature ORDER BY 2 DESC LIMIT 25', [ctx.ref]);
  out.push({
    title: 'What drives it',
    blocks: [
      await chart('feature-importance', imp, (r) => bars('Feature importance', r.map((x) => ({ ...x, importance: num(x.importance) })), 'feature', 'importance', { horizontal: true }), 'feature importance'),
      await chart('shap-summary', shap, (r) => bars('Mean |SHAP| on the evaluation rows', r.map((x) => ({ ...x, attribution: num(x.attribution) })), 'feature', 'attribution', { horizontal: true, yTitle: 'mean |attribution|' }), 'SHAP summary'),
    ],
  });
  const trials = await ctx.rows('SELECT * FROM ml_trial_info($1) ORDER BY trial_id', [ctx.ref]);
  if (typeof trials !== 'string' && trials.length > 1) {
    out.push({
      title: 'Leaderboard (auto)',
      blocks: [table(trials.map((t) => ({ trial_id: t.trial_id, model_type: (t.hyperparameters as Row).model_type, chosen: t.is_optimal ? 'yes' : '', eval_loss: t.eval_loss, ...(t.hparam_tuning_evaluation_metrics as Row) })))],
    });
  }
  return out;
}

/** A ROC curve runs from (0,0) to (1,1): the end points added when the thresholds stop short. */
function withEnds(rows: Row[], x: string, y: string): Row[] {
  const pts = rows.map((r) => ({ [x]: num(r[x]), [y]: num(r[y]) }));
  return [{ [x]: 0, [y]: 0 }, ...pts, { [x]: 1, [y]: 1 }].sort((a, b) => a[x]! - b[x]! || a[y]! - b[y]!);
}

async function pcaSections(ctx: Gatherer, query: string | undefined, sample: number): Promise<Section[]> {
  const info = await ctx.rows('SELECT principal_component_id, explained_variance_ratio, cumulative_explained_variance_ratio FROM ml_principal_component_info($1)', [ctx.ref]);
  const loadings = await ctx.rows('SELECT principal_component_id, feature, numerical_value, categorical_value FROM ml_principal_components($1) WHERE principal_component_id <= 6', [ctx.ref]);
  const cells = typeof loadings === 'string' ? loadings : loadings.flatMap((l) => {
    const pc = `PC${l.principal_component_id}`;
    if (l.categorical_value) return (l.categorical_value as { category: string; value: number }[]).map((c) => ({ pc, feature: `${l.feature}=${c.category}`, loading: c.value }));
    return [{ pc, feature: String(l.feature), loading: num(l.numerical_value) }];
  });
  const blocks = [
    await chart('scree', info, (r) => lines('Explained variance (scree)', r.flatMap((c) => [
      { component: c.principal_component_id, ratio: num(c.explained_variance_ratio), series: 'each' },
      { component: c.principal_component_id, ratio: num(c.cumulative_explained_variance_ratio), series: 'cumulative' },
    ]), 'component', 'ratio', { series: 'series', yTitle: 'share of variance', integerX: true }), 'scree'),
    await chart('loadings', cells, (r) => heatmap('Loadings', r, { x: 'pc', y: 'feature', value: 'loading', diverging: true, xTitle: 'component' }), 'loadings'),
  ];
  if (query) {
    const pts = await ctx.rows('SELECT x, y FROM ml_project($1, $2, $3)', [ctx.ref, query, JSON.stringify({ max_rows: sample })]);
    blocks.push(await chart('pca-scatter', pts, (r) => scatter(`Rows on the first two components (${r.length.toLocaleString('en-US')} sampled)`, r.map((p) => ({ ...p, all: 'rows' })), { x: 'x', y: 'y', color: 'all', xTitle: 'PC1', yTitle: 'PC2' }), 'component scatter'));
  } else blocks.push(noQuery('component scatter'));
  return [{ title: 'Components', blocks }];
}

async function clvSections(ctx: Gatherer, query: string | undefined): Promise<Section[]> {
  const weights = await ctx.rows('SELECT processed_input AS parameter, weight AS value, standard_error FROM ml_weights($1)', [ctx.ref]);
  const holdout = await ctx.rows('SELECT frequency, actual_holdout_purchases, expected_holdout_purchases FROM ml_calibration_holdout($1)', [ctx.ref]);
  const alive = await ctx.rows('SELECT frequency, recency, p_alive FROM ml_probability_alive_matrix($1, NULL, NULL, 12) WHERE frequency <= 25', [ctx.ref]);
  return [{
    title: 'Lifetime value model',
    blocks: [
      await chart('p-alive-matrix', alive, (r) => heatmap('Probability alive by frequency and recency', r.map((c) => ({ frequency: Number(c.frequency), recency: Number(c.recency).toFixed(1), p_alive: num(c.p_alive) })).sort((a, b) => b.frequency - a.frequency), {
        x: 'recency', y: 'frequency', value: 'p_alive', format: '.2f', domain: [0, 1], label: 'P(alive)', xTitle: "recency (time of last purchase)", yTitle: 'repeat purchases', subtitle: 'a customer observed for the longest age in the training data',
      }), 'probability alive matrix'),
      typeof weights === 'string' ? note(`parameters: not available (${weights})`) : table(weights, undefined, 'Fitted parameters'),
      await chart('holdout-purchases', holdout, (r) => groupedBars('Holdout purchases by calibration frequency', r.flatMap((h) => [
        { frequency: h.frequency, series: 'actual', value: num(h.actual_holdout_purchases) },
        { frequency: h.frequency, series: 'expected', value: num(h.expected_holdout_purchases) },
      ]), 'frequency', { xTitle: 'repeat purchases in calibration', yTitle: 'mean holdout purchases' }), 'calibration / holdout'),
      query
        ? await chart('clv-distribution', await ctx.rows('SELECT predicted_value AS clv FROM ml_predict($1, $2)', [ctx.ref, query]), (r) => histogram('Customer lifetime value', r.map((c) => ({ clv: num(c.clv) })), 'clv', { xTitle: 'CLV per customer' }), 'CLV distribution')
        : noQuery('CLV distribution'),
    ],
  }];
}

async function commonSections(ctx: Gatherer, model: ModelRow, query: string | undefined): Promise<Section[]> {
  const out: Section[] = [];
  const curve = await ctx.rows('SELECT training_run, iteration, loss, eval_loss FROM ml_training_info($1)', [ctx.ref]);
  if (typeof curve !== 'string' && curve.length > 1 && model.model_type !== 'clv') {
    const last = Math.max(...curve.map((c) => Number(c.training_run)));
    const pts = curve.filter((c) => Number(c.training_run) === last).flatMap((c) => [
      { iteration: c.iteration, loss: num(c.loss), series: 'training loss' },
      ...(c.eval_loss !== null ? [{ iteration: c.iteration, loss: num(c.eval_loss), series: 'evaluation loss' }] : []),
    ]);
    out.push({ title: 'Training curve', blocks: [await chart('training-curve', pts, (r) => lines('Loss by iteration', r, 'iteration', 'loss', { series: 'series', xZero: true, integerX: true }), 'training curve')] });
  }
  const features = await ctx.rows('SELECT input, type, min, max, mean, stddev, null_count, category_count, kept_categories, other_share, warning FROM ml_feature_info($1)', [ctx.ref]);
  if (model.model_type !== 'clv') out.push({ title: 'Data and features', blocks: [typeof features === 'string' ? note(`feature info: not available (${features})`) : table(features)] });
  const jobs = model.job_id
    ? await ctx.rows(`SELECT id, kind, status, started_at, finished_at, extract(epoch FROM finished_at - started_at)::float8 AS seconds, attempts, progress
                        FROM ml_jobs WHERE id = $1 OR model_name = $2 AND version = $3 ORDER BY id`, [model.job_id, model.model_name, model.version])
    : [];
  const m = model.metrics ?? {};
  const phases = [
    { phase: 'load', seconds: num(m.load_seconds) },
    { phase: 'train', seconds: num(m.train_seconds) },
    { phase: 'stream', seconds: num(m.stream_seconds) },
  ].filter((p) => p.seconds !== null);
  out.push({
    title: 'Job',
    blocks: [
      phases.length ? await chart('phases', phases, (r) => bars('Time by phase', r, 'phase', 'seconds', { horizontal: true }), 'phases') : note('no phase times recorded'),
      typeof jobs === 'string' ? note(`jobs: not available (${jobs})`) : jobs.length ? table(jobs) : note('the jobs are visible to the role that asked for the training only'),
    ],
  });
  out.push({
    title: 'Options and metrics',
    blocks: [
      table(Object.entries(model.options ?? {}).map(([option, value]) => ({ option, value })), ['option', 'value'], 'Options (as resolved)'),
      table(Object.entries(m).map(([metric, value]) => ({ metric, value })), ['metric', 'value'], 'Metrics'),
      query ? `<p class="sub">Rows drawn and profiled: <code>${esc(query)}</code></p>` : '',
    ].filter(Boolean),
  });
  return out;
}
