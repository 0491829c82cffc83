import type pg from 'pg';
import { heatmap, render } from '../report/charts.ts';
import { esc, figure, fmt, note, table } from '../report/html.ts';
import { messageOf } from '../util/errors.ts';

// The console's pages. Text from the database is escaped by esc(); the only script is
// /console.js (see client.ts).

export interface JobView {
  id: string;
  kind: string;
  model_name: string | null;
  version: number | null;
  status: string;
  progress: Record<string, unknown> | null;
  requested_by: string;
  attempts: number;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  error: string | null;
}

const CSS = `
body { font: 14px/1.45 Helvetica, Arial, sans-serif; color: #222; margin: 24px auto; max-width: 1200px; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; } th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; } .note { color: #666; font-style: italic; }
.live { font-size: 12px; padding: 2px 8px; border-radius: 8px; background: #eee; } .live.on { background: #d8f0d8; } .live.off { background: #f6dada; }
.status-training, .status-running { color: #b36b00; font-weight: bold; } .status-ready, .status-done { color: #2a7a2a; } .status-failed { color: #b00; }
textarea { width: 100%; font: 13px monospace; } nav a { margin-right: 14px; }
progress { width: 120px; vertical-align: middle; }
`;

function shell(title: string, body: string, scripted: boolean): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${CSS}</style></head>
<body><nav><a href="/">Models and jobs</a><a href="/explore">Explore a query</a></nav>
${body}
${scripted ? '<script src="/console.js"></script>' : ''}
</body></html>`;
}

/** What a job is doing now, in words: its phase and the progress numbers it reported. */
function progressText(p: Record<string, unknown> | null): string {
  if (!p) return '';
  const parts = Object.entries(p).filter(([k]) => k !== 'phase').map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : typeof v === 'object' ? JSON.stringify(v) : v}`);
  return [p.phase, ...parts].filter(Boolean).join(', ');
}

export function jobRow(j: JobView): string {
  const model = j.model_name ? `${j.model_name}@${j.version}` : '';
  const link = j.model_name && j.status === 'ready' ? `<a href="/models/${encodeURIComponent(model)}">${esc(model)}</a>` : esc(model);
  return `<tr id="job-${esc(j.id)}" data-status="${esc(j.status)}"><td class="num">${esc(j.id)}</td><td>${esc(j.kind)}</td><td>${link}</td>`
    + `<td class="status-${esc(j.status)}">${esc(j.status)}</td><td class="progress">${esc(progressText(j.progress))}</td>`
    + `<td>${esc(fmt(j.started_at))}</td><td>${esc(fmt(j.finished_at))}</td><td>${esc(j.error ?? '')}</td></tr>`;
}

export function homePage(models: Record<string, unknown>[], jobs: JobView[]): string {
  const modelRows = models.map((m) => {
    const spec = `${m.model_name}@${m.version}`;
    const name = m.state === 'ready' ? `<a href="/models/${encodeURIComponent(spec)}">${esc(spec)}</a>` : esc(spec);
    return `<tr><td>${name}</td><td>${esc(m.model_type)}</td><td class="status-${esc(m.state)}">${esc(m.state)}</td><td class="num">${esc(fmt(m.rows === null ? null : Number(m.rows)))}</td><td>${esc(fmt(m.trained_at))}</td><td>${esc(m.owner)}</td></tr>`;
  });
  return shell('sqlml console', `<h1>sqlml console</h1>
<h2>Models</h2>
${models.length ? `<table id="models"><thead><tr><th>model</th><th>type</th><th>state</th><th>rows</th><th>trained</th><th>owner</th></tr></thead><tbody>${modelRows.join('\n')}</tbody></table>` : note('no model your role may see yet: CALL ml_train(...) in psql')}
<h2>Jobs <span id="live" class="live">connecting...</span></h2>
<table id="jobs"><thead><tr><th>id</th><th>kind</th><th>model</th><th>status</th><th>progress</th><th>started</th><th>finished</th><th>error</th></tr></thead>
<tbody>${jobs.map(jobRow).join('\n')}</tbody></table>`, true);
}

type Run = <T>(f: (c: pg.PoolClient) => Promise<T>) => Promise<T>;

/** ml_describe and ml_correlation of a query typed in the box, with the correlation heat map. */
export async function explorePage(q: string, run: Run | null, timeout: string): Promise<string> {
  let results = '';
  if (run) {
    try {
      // the timeout is set again before each statement: the typed query may change it for the next
      const limited = async (c: pg.PoolClient, sql: string) => {
        await c.query(`SELECT set_config('statement_timeout', $1, true)`, [timeout]);
        return (await c.query(sql, [q])).rows;
      };
      const { describe, correlation } = await run(async (c) => ({
        describe: await limited(c, 'SELECT column_name, data_type, count, nulls, distinct_count, min, max, mean, stddev, p25, p50, p75 FROM ml_describe($1)'),
        correlation: await limited(c, 'SELECT column_a, column_b, pearson, spearman, redundant FROM ml_correlation($1)'),
      }));
      const cells = correlation.flatMap((r) => [
        { a: r.column_a, b: r.column_b, pearson: r.pearson },
        ...(r.column_a !== r.column_b ? [{ a: r.column_b, b: r.column_a, pearson: r.pearson }] : []),
      ]).filter((r) => r.pearson !== null);
      for (const name of new Set(cells.map((c) => c.a))) cells.push({ a: name, b: name, pearson: 1 });
      results = `<h2>Columns</h2>${table(describe)}
<h2>Correlation</h2>${cells.length ? figure(await render(heatmap('Pearson correlation', cells, { x: 'a', y: 'b', value: 'pearson', diverging: true, xTitle: '', yTitle: '' })), 'correlation-heatmap') : note('no pair of numeric columns')}
${table(correlation)}`;
    } catch (err) {
      results = `<p class="error">${esc(messageOf(err))}</p>`;
    }
  }
  return shell('Explore a query', `<h1>Explore a query</h1>
<form method="get" action="/explore"><textarea name="q" rows="4" placeholder="SELECT * FROM demo.customer_features">${esc(q)}</textarea><br><button type="submit">Describe</button></form>
${results}`, false);
}
