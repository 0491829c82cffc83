import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConsole, type RunningConsole } from '../src/console/server.ts';
import { rows, freshDatabase, type TestDb } from './helpers.ts';
import { BIN } from './processes.ts';

// The report and the console as a person sees them, in headless Chromium (Debian's chromium,
// driven by playwright-core; .ci/run installs it): every chart present with the right number
// of marks, titles readable, no console errors, no request leaving the page; job progress
// pushed to an open console page while a model trains; a role that may not see a model gets
// no report of it. SQLML_SCREENSHOTS=<dir> keeps a screenshot of each page (docs/images).

const run = promisify(execFile);
const CHROMIUM = process.env.SQLML_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.SQLML_SCREENSHOTS;

let t: TestDb;
let browser: Browser;
let dir: string;
const FEATURES = 'SELECT * FROM demo.customer_features';

beforeAll(async () => {
  t = await freshDatabase('browser', { demo: true });
  await t.worker();
  dir = mkdtempSync(join(tmpdir(), 'sqlml-browser-'));
  const train = (sql: string) => t.pool.query(sql);
  await train(`CALL ml_train('seg', 'kmeans', '${FEATURES}', '{"num_clusters": {"range": [2, 6]}, "exclude": ["customer_id"], "seed": 1}')`);
  await train(`CALL ml_train('dens', 'hdbscan', '${FEATURES}', '{"exclude": ["customer_id"], "min_cluster_size": 20}')`);
  await train(`CALL ml_train('churn', 'logistic_reg', 'SELECT *, recency_days > 120 AS churned FROM demo.customer_features', '{"exclude": ["customer_id", "recency_days"], "input_label_cols": ["churned"]}')`);
  await train(`CALL ml_train('spend', 'boosted_tree_regressor', '${FEATURES}', '{"exclude": ["customer_id"], "input_label_cols": ["monetary"]}')`);
  await train(`CALL ml_train('pcs', 'pca', '${FEATURES}', '{"num_principal_components": 3, "exclude": ["customer_id"]}')`);
  await train(`CALL ml_train('ltv', 'clv', 'SELECT customer_id, order_date, sales FROM demo.orders', '{"time_unit": "week", "calibration_end": "2016-12-31"}')`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A page that records console errors and every request that is not the page's own origin. */
async function watchedPage(allowedOrigin: string | null): Promise<{ page: Page; errors: string[]; outside: string[]; requests: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1150, height: 900 } });
  const errors: string[] = [];
  const outside: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); void d.dismiss(); });
  page.on('request', (r) => {
    const u = r.url();
    requests.push(u);
    const local = u.startsWith('file:') || u.startsWith('data:') || (allowedOrigin !== null && u.startsWith(allowedOrigin));
    if (!local) outside.push(u);
  });
  return { page, errors, outside, requests };
}

async function report(model: string, url = t.url, extra: string[] = []): Promise<string> {
  const out = join(dir, `${model.replace(/\W/g, '_')}.html`);
  await run(process.execPath, [BIN, 'report', model, '--database-url', url, '--out', out, ...extra]);
  return out;
}

/** Per chart: its marks by kind (Vega's SVG groups mark-<type>), the title, and whether every text is readable. */
async function charts(page: Page) {
  return page.$$eval('figure.chart', (figs) => figs.map((f) => {
    const groups = [...f.querySelectorAll('g[class^="mark-"]')].filter((g) => /role-mark/.test(g.getAttribute('class') ?? ''));
    const marks = groups.map((g) => ({ type: (g.getAttribute('class') ?? '').split(' ')[0]!.slice(5), count: g.children.length }));
    const texts = [...f.querySelectorAll('text')].filter((x) => (x.textContent ?? '').trim());
    const unreadable = texts.filter((x) => {
      const r = x.getBoundingClientRect();
      return parseFloat(getComputedStyle(x).fontSize) < 8 || r.width === 0 || r.height === 0;
    }).length;
    return { name: f.getAttribute('data-chart')!, title: f.querySelector('.role-title-text')?.textContent ?? '', marks, unreadable };
  }));
}

async function open(file: string, shot: string) {
  const w = await watchedPage(null);
  await w.page.goto(`file://${file}`);
  const found = await charts(w.page);
  if (SHOTS) await w.page.screenshot({ path: join(SHOTS, `${shot}.jpg`), fullPage: true, type: 'jpeg', quality: 70 });
  return { ...w, found, byName: (n: string) => found.find((c) => c.name === n) };
}

const count = (c: { marks: { type: string; count: number }[] } | undefined, type: string, nth = 0) => c?.marks.filter((m) => m.type === type)[nth]?.count;

describe('sqlml report', () => {
  it('k-means: sizes, the k sweep with the elbow, the scatter of every sampled row with centroids, the profile heat map', async () => {
    const r = await open(await report('seg'), 'report-kmeans');
    const [{ k, n }] = await rows<{ k: number; n: number }>(t.pool, `SELECT num_clusters AS k, (SELECT count(*) FROM demo.customer_features)::int AS n FROM ml_evaluate('seg')`);
    expect(r.found.map((c) => c.name)).toEqual(['cluster-sizes', 'k-sweep-db', 'k-sweep-elbow', 'k-sweep-silhouette', 'segment-scatter', 'profile-heatmap', 'training-curve', 'phases']);
    expect(count(r.byName('cluster-sizes'), 'rect')).toBe(k);
    expect(count(r.byName('k-sweep-db'), 'symbol')).toBe(5); // k = 2..6
    expect(count(r.byName('segment-scatter'), 'symbol', 0)).toBe(n); // fewer rows than the 2,000 sampled
    expect(count(r.byName('segment-scatter'), 'symbol', 1)).toBe(k); // the centroids
    const [{ cells }] = await rows<{ cells: number }>(t.pool, `SELECT count(DISTINCT segment)::int AS cells FROM ml_profile_model('seg', '${FEATURES}')`);
    expect(count(r.byName('profile-heatmap'), 'rect')! % cells).toBe(0);
    expect(r.byName('k-sweep-elbow')!.title).toMatch(/elbow/);
    for (const c of r.found) expect(c.unreadable, c.name).toBe(0);
    expect(r.errors).toEqual([]);
    expect(r.outside).toEqual([]);
    await r.page.close();
  });

  it('hdbscan: noise as its own bar, exemplars; pca: scree, loadings, scatter', async () => {
    const d = await open(await report('dens'), 'report-hdbscan');
    const sizes = await rows<{ segment: string }>(t.pool, `SELECT DISTINCT segment FROM ml_profile_model('dens', '${FEATURES}')`);
    expect(count(d.byName('cluster-sizes'), 'rect')).toBe(sizes.length);
    expect(await d.page.locator('figure[data-chart="cluster-sizes"] text', { hasText: 'noise' }).count()).toBeGreaterThan(0);
    expect(d.found.map((c) => c.name)).toContain('membership');
    expect(count(d.byName('membership'), 'rect')).toBeGreaterThan(1); // a histogram's bars
    expect(d.errors).toEqual([]);
    await d.page.close();
    const p = await open(await report('pcs'), 'report-pca');
    expect(p.found.map((c) => c.name)).toEqual(['scree', 'loadings', 'pca-scatter', 'phases']);
    expect(count(p.byName('scree'), 'symbol')).toBe(2 * 3); // each and cumulative, 3 components
    expect(p.outside).toEqual([]);
    await p.page.close();
  });

  it('binary classifier: ROC from (0,0) to (1,1), PR, lift (10 bars), gain, calibration, confusion matrix, importance', async () => {
    const r = await open(await report('churn'), 'report-classifier');
    expect(r.found.map((c) => c.name)).toEqual(['roc-curve', 'pr-curve', 'lift', 'gain', 'confusion-matrix', 'calibration', 'feature-importance', 'shap-summary', 'training-curve', 'phases']);
    // the curve's path: first point at the plot's bottom-left, last at its top-right
    const d = await r.page.$eval('figure[data-chart="roc-curve"] g.mark-line.role-mark path', (p) => p.getAttribute('d')!);
    const pts = [...d.matchAll(/(-?[\d.]+),(-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(pts[0]).toEqual([0, 260]);
    expect(pts[pts.length - 1]).toEqual([420, 0]);
    expect(count(r.byName('lift'), 'rect')).toBe(10);
    expect(count(r.byName('confusion-matrix'), 'rect')).toBe(4);
    expect(r.byName('roc-curve')!.title).toBe('ROC curve');
    expect(r.errors).toEqual([]);
    expect(r.outside).toEqual([]);
    await r.page.close();
  });

  it('regression: predicted vs actual (every row), calibration; clv: probability-alive matrix, holdout, distribution', async () => {
    const r = await open(await report('spend'), 'report-regression');
    const [{ n }] = await rows<{ n: number }>(t.pool, `SELECT count(*)::int AS n FROM demo.customer_features`);
    expect(count(r.byName('predicted-vs-actual'), 'symbol')).toBe(n);
    expect(r.byName('calibration')).toBeDefined();
    await r.page.close();
    const c = await open(await report('ltv'), 'report-clv');
    expect(c.found.map((x) => x.name)).toEqual(['p-alive-matrix', 'holdout-purchases', 'clv-distribution', 'phases']);
    const [{ freq }] = await rows<{ freq: number }>(t.pool, `SELECT count(DISTINCT frequency)::int AS freq FROM ml_probability_alive_matrix('ltv', NULL, NULL, 12) WHERE frequency <= 25`);
    expect(count(c.byName('p-alive-matrix'), 'rect')).toBe(freq * 13);
    expect(c.errors).toEqual([]);
    await c.page.close();
  });

  it('escapes what users named: a column and categories made of HTML run no script and add no element', async () => {
    await t.pool.query(`CREATE TABLE public.nasty AS SELECT i AS "<img src=x onerror=alert(1)>", CASE WHEN i % 2 = 0 THEN '<script>alert(2)</script>' ELSE '"><svg onload=alert(3)>' END AS "</title><b>x"
                          FROM generate_series(1, 60) i`);
    await t.pool.query(`CALL ml_train('nasty', 'kmeans', 'SELECT * FROM public.nasty', '{"num_clusters": 2, "seed": 1}')`);
    const r = await open(await report('nasty'), 'report-escaping');
    expect(r.errors).toEqual([]); // no alert dialog, no script error
    expect(await r.page.locator('img, script, b, i').count()).toBe(0);
    expect(await r.page.locator('td', { hasText: '<img src=x onerror=alert(1)>' }).count()).toBeGreaterThan(0); // shown as text
    expect(await r.page.locator('td', { hasText: '<script>alert(2)</script>' }).count()).toBeGreaterThan(0);
    await r.page.close();
  });
});

describe('a role that may not see a model', () => {
  it('gets no report of it, from the CLI or the console; a reader it was shared with gets it without the rows', async () => {
    await t.pool.query(`DROP ROLE IF EXISTS outsider_b; CREATE ROLE outsider_b LOGIN PASSWORD 'pw'; DROP ROLE IF EXISTS reader_b; CREATE ROLE reader_b LOGIN PASSWORD 'pw'`);
    await t.pool.query(`SELECT ml_grant('seg', 'reader_b')`);
    const as = (role: string) => {
      const u = new URL(t.url);
      u.username = role;
      u.password = 'pw';
      return u.toString();
    };
    const failed = await report('seg', as('outsider_b')).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toMatch(/model "seg" does not exist, has no ready version, or your role may not see it/);
    const shared = await open(await report('seg', as('reader_b')), 'report-reader');
    expect(shared.found.map((c) => c.name)).toContain('k-sweep-db');
    expect(shared.found.map((c) => c.name)).not.toContain('segment-scatter');
    expect(await shared.page.locator('.note', { hasText: 'the training query is run only for the role that wrote it' }).count()).toBeGreaterThan(0);
    await shared.page.close();
    // a superuser viewing another role's model: the author's training query is shown, never run
    await t.pool.query(`DROP ROLE IF EXISTS author_b; CREATE ROLE author_b LOGIN PASSWORD 'pw'; GRANT SELECT ON demo.customer_features TO author_b`);
    const author = new pg.Client({ connectionString: as('author_b') });
    await author.connect();
    await author.query(`CALL ml_train('authored', 'kmeans', 'SELECT recency_days, frequency FROM demo.customer_features', '{"num_clusters": 2, "seed": 1}')`);
    await author.end();
    const viewed = await open(await report('authored'), 'report-admin-of-other');
    expect(viewed.found.map((c) => c.name)).not.toContain('segment-scatter');
    expect(await viewed.page.locator('.note', { hasText: 'the training query is run only for the role that wrote it' }).count()).toBeGreaterThan(0);
    await viewed.page.close();
    const own = await open(await report('authored', as('author_b')), 'report-author');
    expect(own.found.map((c) => c.name)).toContain('segment-scatter');
    await own.page.close();
    const web = await startConsole({ databaseUrl: as('outsider_b'), port: 0 });
    try {
      const cookie = { cookie: `sqlml_console=${new URL(web.url).searchParams.get('token')}` };
      const home = await fetch(new URL('/', web.url), { headers: cookie }).then((r) => r.text());
      expect(home).toMatch(/Models/);
      expect(home).not.toMatch(/seg@/);
      const res = await fetch(new URL('/models/seg', web.url), { headers: cookie });
      expect(res.status).toBe(404);
      expect(await res.text()).toMatch(/may not see it/);
    } finally {
      await web.close();
    }
  });
});

describe('sqlml console', () => {
  let web: RunningConsole;
  beforeAll(async () => {
    web = await startConsole({ databaseUrl: t.url, port: 0 });
    await t.pool.query(`CREATE TABLE public.big AS SELECT i AS id, sin(i * 0.1) + (i % 13) / 13.0 AS a, cos(i * 0.37) * 2 AS b, (i % 101) / 101.0 AS c, (i % 7)::float8 AS d, (i % 29) / 10.0 + sin(i) AS e FROM generate_series(1, 100000) i`);
  });
  afterAll(async () => web?.close());

  it("pushes a training job's progress to an open page (one event stream, no polling), then links its report", async () => {
    const w = await watchedPage(new URL(web.url).origin);
    await w.page.goto(web.url);
    await w.page.locator('#live.on').waitFor();
    const started = w.requests.length;
    const admin = new pg.Client({ connectionString: t.url });
    await admin.connect();
    const { rows: [{ id }] } = await admin.query<{ id: string }>(`SELECT ml_create_model('slow', 'boosted_tree_regressor', 'SELECT a, b, c, d, e FROM public.big', '{"input_label_cols": ["e"], "early_stop": false, "max_iterations": 400, "max_tree_depth": 8}')::text AS id`);
    const seen: string[] = [];
    const row = w.page.locator(`#job-${id}`);
    for (let i = 0; i < 1200; i++) {
      if (await row.count()) {
        const [status, text] = await row.evaluate((el) => [el.getAttribute('data-status'), el.querySelector('td.progress')?.textContent ?? '']);
        if (text && seen[seen.length - 1] !== text) seen.push(text);
        if (status === 'ready') break;
      }
      await w.page.waitForTimeout(50);
    }
    await admin.end();
    expect(await row.getAttribute('data-status')).toBe('ready');
    const iterations = seen.map((s) => /iteration (\d+)/.exec(s)?.[1]).filter(Boolean).map(Number);
    expect(iterations.length).toBeGreaterThanOrEqual(2); // seen advancing while it trained
    expect(iterations).toEqual([...iterations].sort((a, b) => a - b));
    expect(seen[seen.length - 1]).toMatch(/^ready/);
    expect(w.requests.slice(started)).toEqual([]); // nothing requested while the job ran: pushed
    // the printed URL (token), then the page it redirects to, its script and its one stream
    expect(w.requests.map((u) => new URL(u).pathname + (new URL(u).searchParams.has('token') ? '?token' : ''))).toEqual(['/?token', '/', '/console.js', '/events']);
    if (SHOTS) await w.page.screenshot({ path: join(SHOTS, 'console.jpg'), fullPage: false, type: 'jpeg', quality: 70 });
    await row.locator('a').click();
    await w.page.waitForURL(/\/models\/slow/);
    expect(await w.page.locator('figure.chart[data-chart="feature-importance"]').count()).toBe(1);
    expect(w.errors).toEqual([]);
    expect(w.outside).toEqual([]);
    await w.page.close();
  });

  it('describes a typed query with a correlation heat map, read-only', async () => {
    const w = await watchedPage(new URL(web.url).origin);
    await w.page.goto(web.url); // the token, once: then a cookie
    await w.page.goto(new URL('/explore', web.url).toString());
    await w.page.fill('textarea', 'SELECT recency_days, frequency, monetary, avg_basket FROM demo.customer_features');
    await w.page.click('button[type=submit]');
    await w.page.locator('figure[data-chart="correlation-heatmap"]').waitFor();
    const found = await charts(w.page);
    expect(count(found[0], 'rect')).toBe(16);
    if (SHOTS) await w.page.screenshot({ path: join(SHOTS, 'console-explore.jpg'), fullPage: true, type: 'jpeg', quality: 70 });
    // a statement that writes is refused by the read-only transaction
    const sneaky = `SELECT * FROM demo.customer_features, LATERAL (SELECT ml_create_model('sneaky', 'kmeans', 'SELECT 1 AS a')) x`;
    await w.page.goto(new URL(`/explore?q=${encodeURIComponent(sneaky)}`, web.url).toString());
    expect(await w.page.locator('.error').textContent()).toMatch(/read-only transaction/);
    expect(await rows(t.pool, `SELECT 1 FROM ml_models WHERE model_name = 'sneaky'`)).toEqual([]);
    expect(w.errors).toEqual([]);
    await w.page.close();
  });

  it('survives what a typed query or a flood of notifications can do: a killed session, a timeout reset, 20,000 NOTIFYs', async () => {
    const short = await startConsole({ databaseUrl: t.url, port: 0, exploreTimeout: '1s' });
    const cookie = { cookie: `sqlml_console=${new URL(short.url).searchParams.get('token')}` };
    const explore = (q: string) => fetch(new URL(`/explore?q=${encodeURIComponent(q)}`, short.url), { headers: cookie }).then((r) => r.text());
    try {
      expect(await explore('SELECT pg_terminate_backend(pg_backend_pid())::int AS x')).toMatch(/class="error"/);
      // the statement after one that turned the timeout off is still limited
      const started = performance.now();
      const reset = `SELECT v.x, v.y FROM (VALUES (1.0::float8, 2.0::float8), (2.0, 1.0), (3.0, 5.0)) v(x, y)
                      WHERE set_config('statement_timeout', '0', true) IS NOT NULL
                        AND (current_query() NOT LIKE '%ml_correlation%' OR EXISTS (SELECT FROM pg_sleep(60)))`;
      expect(await explore(reset)).toMatch(/statement timeout/);
      expect(performance.now() - started).toBeLessThan(20_000);
      // anyone may NOTIFY: the console coalesces the hints and keeps answering
      const page = await watchedPage(new URL(short.url).origin);
      await page.page.goto(short.url);
      await page.page.locator('#live.on').waitFor();
      await t.pool.query(`SELECT count(pg_notify('ml_job_progress', g::text)) FROM generate_series(1, 20000) g`);
      const t0 = performance.now();
      expect(await fetch(new URL('/', short.url), { headers: cookie }).then((r) => r.status)).toBe(200);
      expect(performance.now() - t0).toBeLessThan(3000);
      await page.page.close();
    } finally {
      await short.close();
    }
  });

  it('needs its token even on loopback, refuses cross-site requests, answers only its own host name', async () => {
    const u = new URL(web.url);
    const token = u.searchParams.get('token')!;
    expect(token).toMatch(/^[\w-]{32}$/);
    const bare = new URL('/models/seg', u.origin);
    expect((await fetch(bare)).status).toBe(401); // another local user, or a page that does not know the token
    const cookie = `sqlml_console=${token}`;
    expect((await fetch(bare, { headers: { cookie } })).status).toBe(200);
    // a page on another site: the browser marks the request cross-site (and would not send the SameSite=Strict cookie)
    expect((await fetch(bare, { headers: { cookie, 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    // the token link redirects within the console only
    const redirect = (path: string) => new Promise<string | undefined>((resolve) => {
      import('node:http').then(({ request }) => {
        const req = request({ host: '127.0.0.1', port: u.port, path, headers: { Host: `127.0.0.1:${u.port}` } }, (res) => resolve(res.headers.location));
        req.end();
      });
    });
    expect(await redirect(`//evil.example/?token=${token}`)).toBe('/');
    expect(await redirect(`/models/seg?token=${token}`)).toBe('/models/seg');
    const rebound = await new Promise<number>((resolve) => {
      import('node:http').then(({ request }) => {
        const req = request({ host: '127.0.0.1', port: u.port, path: '/', headers: { Host: `attacker.example:${u.port}`, cookie } }, (res) => resolve(res.statusCode ?? 0));
        req.end();
      });
    });
    expect(rebound).toBe(421);
    const open = await startConsole({ databaseUrl: t.url, host: '0.0.0.0', port: 0 });
    try {
      const u = new URL(open.url);
      expect(u.searchParams.get('token')).toMatch(/^[\w-]{32}$/);
      const bare = new URL(u.pathname, u.origin.replace('0.0.0.0', '127.0.0.1'));
      expect((await fetch(bare)).status).toBe(401);
      expect((await fetch(new URL('/models/seg', bare))).status).toBe(401);
      const withToken = new URL(bare);
      withToken.searchParams.set('token', u.searchParams.get('token')!);
      const first = await fetch(withToken, { redirect: 'manual' });
      expect(first.status).toBe(303);
      const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
      expect((await fetch(new URL('/models/seg', bare), { headers: { cookie } })).status).toBe(200);
      expect((await fetch(new URL('/models/seg', bare), { headers: { cookie: 'sqlml_console=wrong' } })).status).toBe(401);
    } finally {
      await open.close();
    }
  });
});
