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
// LISTEN connection (the page holds one EventSource; nothing polls). Every request needs the
// token printed at start (then a SameSite=Strict cookie), so neither another local user nor a
// web page in the same browser can drive it; requests a browser marks cross-site are refused,
// and on loopback the Host must be the console's own name (no DNS rebinding).

export interface ConsoleOptions {
  databaseUrl: string;
  apiSchema?: string;
  host?: string;
  port?: number; // 0: any free port
  token?: string; // default: a fresh random one
  /** statement_timeout of a typed query's statements (explore). */
  exploreTimeout?: string;
}

export interface RunningConsole {
  url: string; // what to open (with the token when one is needed)
  server: Server;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);
const CHANNELS = ['ml_jobs', 'ml_job_progress'];
/** Job ids waiting to be looked up: anyone may NOTIFY, so the queue is bounded and coalesced. */
const MAX_PENDING = 500;
const EXPLORE_TIMEOUT = '120s';
const JOB_COLUMNS = `id::text, kind, model_name, version, status, progress, requested_by, attempts, created_at, started_at, finished_at, error`;

export async function startConsole(o: ConsoleOptions): Promise<RunningConsole> {
  const host = o.host ?? '127.0.0.1';
  const schema = o.apiSchema ?? 'public';
  const token = o.token ?? randomBytes(24).toString('base64url');
  const pool = makePool(o.databaseUrl, 3);
  const explorePool = makePool(o.databaseUrl, 2); // typed queries cannot starve the pages
  const streams = new Set<ServerResponse>();
  const broadcast = (event: string, data: unknown) => {
    for (const s of streams) if (!s.writableEnded) s.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  // notifications -> a bounded set of job ids -> one lookup at a time, as this role
  const pending = new Set<string>();
  let draining = false;
  const drain = async () => {
    if (draining) return;
    draining = true;
    try {
      while (pending.size && streams.size) {
        const ids = [...pending].slice(0, 100);
        for (const id of ids) pending.delete(id);
        const { rows } = await readOnly(pool, schema, (c) => c.query<JobView>(`SELECT ${JOB_COLUMNS} FROM ml_jobs WHERE id = ANY($1::bigint[])`, [ids]));
        for (const job of rows) broadcast('job', { id: job.id, status: job.status, html: jobRow(job) });
        await new Promise((r) => setTimeout(r, 100));
      }
    } catch (err) {
      log.warn('console: job lookup failed', { error: messageOf(err) });
    } finally {
      draining = false;
    }
  };
  let closed = false;
  let listener: pg.Client | null = null;
  const listen = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: o.databaseUrl, application_name: 'sqlml console' });
    c.on('notification', (n) => {
      const id = n.payload ?? '';
      if (!/^\d{1,18}$/.test(id) || !streams.size) return; // the payload is only a hint
      if (pending.size < MAX_PENDING) pending.add(id);
      void drain();
    });
    // a lost connection is made again (the pages keep their stream and say so meanwhile)
    const again = () => {
      if (closed || listener !== c) return;
      listener = null;
      broadcast('status', { live: false });
      setTimeout(() => void listen().catch(() => undefined), 2000);
    };
    c.on('error', (err) => log.warn('console: notification connection lost', { error: messageOf(err) }));
    c.on('end', again);
    listener = c;
    try {
      await c.connect();
      for (const ch of CHANNELS) await c.query(`LISTEN ${ch}`);
      broadcast('status', { live: true });
    } catch (err) {
      again();
      throw err;
    }
  };
  await listen();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://console');
    if (!hostAllowed(req, host, port())) return send(res, 421, 'text/plain', 'unexpected Host header');
    if (req.headers['sec-fetch-site'] === 'cross-site') return send(res, 403, 'text/plain', 'the console does not answer requests from other sites');
    if (!authorized(req, url, token)) return send(res, 401, 'text/plain', 'this console needs the token printed when it started: open the URL it printed');
    if (url.searchParams.get('token') === token) {
      url.searchParams.delete('token');
      res.setHeader('Set-Cookie', `sqlml_console=${token}; HttpOnly; SameSite=Strict; Path=/`);
      res.setHeader('Location', `/${url.pathname.replace(/^\/+/, '')}${url.search}`); // never //other.host
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
      const html = await explorePage(q, q ? (f) => readOnly(explorePool, schema, (c) => f(c)) : null, o.exploreTimeout ?? EXPLORE_TIMEOUT);
      return send(res, 200, 'text/html; charset=utf-8', html, true);
    }
    return send(res, 404, 'text/plain', 'not found');
  };

  const openStream = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write(': connected\n\n');
    streams.add(res);
    const keepAlive = setInterval(() => {
      if (!res.writableEnded) res.write(': keep-alive\n\n');
    }, 15_000);
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
    url: `http://${shown}:${port()}/?token=${token}`,
    server,
    async close() {
      closed = true;
      for (const s of streams) s.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await listener?.end().catch(() => undefined);
      await pool.end();
      await explorePool.end();
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
