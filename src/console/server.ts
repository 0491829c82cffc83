import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { makePool } from '../db/connect.ts';
import { ModelNotVisible, modelReport } from '../report/model-report.ts';
import { readOnly } from '../report/session.ts';
import { log } from '../util/log.ts';
import { messageOf } from '../util/errors.ts';
import { CONSOLE_JS } from './client.ts';
import { explorePage, homePage, jobRow, type JobView } from './pages.ts';

// `sqlml console`: a small read-only web app on the given database URL. It shows what that
// role may see (the views and functions apply row-level security), runs every statement in a
// READ ONLY transaction, and pushes job progress to the pages as server-sent events from one
// LISTEN connection (the page holds one EventSource; nothing polls). Bound to 127.0.0.1 unless
// told otherwise; bound elsewhere, every request needs the token printed at start.

export interface ConsoleOptions {
  databaseUrl: string;
  apiSchema?: string;
  host?: string;
  port?: number; // 0: any free port
  token?: string; // default: a fresh one when the host is not loopback
}

export interface RunningConsole {
  url: string; // what to open (with the token when one is needed)
  server: Server;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);
const CHANNELS = ['ml_jobs', 'ml_job_progress'];
const JOB_COLUMNS = `id::text, kind, model_name, version, status, progress, requested_by, attempts, created_at, started_at, finished_at, error`;

export async function startConsole(o: ConsoleOptions): Promise<RunningConsole> {
  const host = o.host ?? '127.0.0.1';
  const schema = o.apiSchema ?? 'public';
  const token = o.token ?? (LOOPBACK.has(host) ? null : randomBytes(24).toString('base64url'));
  const pool = makePool(o.databaseUrl, 4);
  const listener = new pg.Client({ connectionString: o.databaseUrl, application_name: 'sqlml console' });
  listener.on('error', (err) => log.warn('console: notification connection lost', { error: messageOf(err) }));
  await listener.connect();
  for (const c of CHANNELS) await listener.query(`LISTEN ${c}`);
  const streams = new Set<ServerResponse>();
  listener.on('notification', (n) => {
    if (!streams.size || !/^\d+$/.test(n.payload ?? '')) return; // anyone may NOTIFY: the payload is only a hint
    void readOnly(pool, schema, (c) => c.query<JobView>(`SELECT ${JOB_COLUMNS} FROM ml_jobs WHERE id = $1`, [n.payload]))
      .then(({ rows }) => {
        const job = rows[0];
        if (!job) return; // not this role's job
        const data = JSON.stringify({ id: job.id, status: job.status, html: jobRow(job) });
        for (const s of streams) s.write(`event: job\ndata: ${data}\n\n`);
      })
      .catch((err) => log.warn('console: job lookup failed', { error: messageOf(err) }));
  });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://console');
    if (!hostAllowed(req, host, port())) return send(res, 421, 'text/plain', 'unexpected Host header');
    if (token && !authorized(req, url, token)) return send(res, 401, 'text/plain', 'this console needs the token printed when it started: open the URL it printed');
    if (token && url.searchParams.get('token') === token) {
      url.searchParams.delete('token');
      res.setHeader('Set-Cookie', `sqlml_console=${token}; HttpOnly; SameSite=Strict; Path=/`);
      res.setHeader('Location', url.pathname + url.search);
      return send(res, 303, 'text/plain', '');
    }
    if (req.method !== 'GET') return send(res, 405, 'text/plain', 'the console is read-only');
    const path = url.pathname;
    if (path === '/console.js') return send(res, 200, 'text/javascript; charset=utf-8', CONSOLE_JS);
    if (path === '/events') return openStream(req, res);
    if (path === '/') {
      const html = await readOnly(pool, schema, async (c) => {
        const models = await c.query(`SELECT model_name, version, model_type, state, trained_at, owner, metrics ->> 'rows' AS rows FROM ml_models ORDER BY model_name, version DESC`);
        const jobs = await c.query<JobView>(`SELECT ${JOB_COLUMNS} FROM ml_jobs ORDER BY ml_jobs.id DESC LIMIT 50`);
        return homePage(models.rows, jobs.rows);
      });
      return send(res, 200, 'text/html; charset=utf-8', html, true);
    }
    if (path.startsWith('/models/')) {
      const spec = decodeURIComponent(path.slice('/models/'.length));
      try {
        const html = await readOnly(pool, schema, (c) => modelReport(c, spec, { nav: '<nav><a href="/">← models and jobs</a></nav>' }));
        return send(res, 200, 'text/html; charset=utf-8', html);
      } catch (err) {
        if (err instanceof ModelNotVisible) return send(res, 404, 'text/plain; charset=utf-8', err.message);
        throw err;
      }
    }
    if (path === '/explore') {
      const q = url.searchParams.get('q') ?? '';
      const html = await explorePage(q, q ? (f) => readOnly(pool, schema, async (c) => {
        await c.query(`SET LOCAL statement_timeout = '120s'`);
        return f(c);
      }) : null);
      return send(res, 200, 'text/html; charset=utf-8', html, true);
    }
    return send(res, 404, 'text/plain', 'not found');
  };

  const openStream = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write(': connected\n\n');
    streams.add(res);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    req.on('close', () => {
      clearInterval(keepAlive);
      streams.delete(res);
    });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      log.warn('console: request failed', { path: req.url, error: messageOf(err) });
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', messageOf(err));
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8321, host, resolve);
  });
  const port = () => (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port()}/${token ? `?token=${token}` : ''}`,
    server,
    async close() {
      for (const s of streams) s.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await listener.end().catch(() => undefined);
      await pool.end();
    },
  };
}

/** Pages may run only their own script; the report pages carry their own stricter policy. */
const PAGE_CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src data:; form-action 'self'";

function send(res: ServerResponse, status: number, type: string, body: string, scripted = false): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    ...(scripted ? { 'Content-Security-Policy': PAGE_CSP } : { 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:" }),
  });
  res.end(body);
}

/** A page on another site cannot reach a loopback console by rebinding its own name to 127.0.0.1. */
function hostAllowed(req: IncomingMessage, host: string, port: number): boolean {
  if (!LOOPBACK.has(host)) return true; // bound elsewhere: the token decides
  const h = (req.headers.host ?? '').toLowerCase();
  return [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(h);
}

function authorized(req: IncomingMessage, url: URL, token: string): boolean {
  const given = url.searchParams.get('token') ?? /(?:^|;\s*)sqlml_console=([^;]+)/.exec(req.headers.cookie ?? '')?.[1] ?? '';
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
