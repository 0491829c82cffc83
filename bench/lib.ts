import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { makePool, type Pool } from '../src/db/connect.ts';
import { startEmbedded } from '../src/db/embedded.ts';
import { install } from '../src/db/migrate.ts';
import { provisionRoles, type RoleUrls } from '../src/db/roles.ts';
import { Child } from '../test/processes.ts';

// Shared pieces of the benchmarks: a database (DATABASE_URL, or an embedded PostgreSQL in a
// temporary folder), timers, and the optional scikit-learn baseline.

export interface BenchDb {
  url: string;
  pool: Pool;
  roles: RoleUrls;
  close(): Promise<void>;
}

export async function benchDatabase(port = 54400 + Math.floor(Math.random() * 500)): Promise<BenchDb> {
  let url = process.env.DATABASE_URL;
  let stop: (() => Promise<void>) | null = null;
  if (!url) {
    const dir = mkdtempSync(join(tmpdir(), 'sqlml-bench-'));
    chmodSync(dir, 0o755);
    const server = await startEmbedded({ dataDir: join(dir, 'pgdata'), port, persistent: false });
    url = server.url;
    stop = async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  }
  const pool = makePool(url, 4);
  // The sidecar as docs/security.md sets it up: a role of its own, and the reader role.
  const roles = await provisionRoles(url, { sidecarPassword: 'sqlml-bench-sidecar', readerPassword: 'sqlml-bench-reader' });
  const installer = makePool(roles.sidecarUrl, 1);
  await install(installer);
  await installer.end();
  return {
    url,
    pool,
    roles,
    async close() {
      await pool.end();
      await stop?.();
    },
  };
}

export async function seconds<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [(performance.now() - t0) / 1000, r];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Peak resident memory of a process, from /proc (Linux). */
export function peakRssMb(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Debian's python3 with scikit-learn, if installed (the product never needs Python). */
export function sklearnAvailable(): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import sklearn'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const fmt = (x: number | null | undefined, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(digits));

/** A sidecar in a child process of its own (its memory is measured apart from the benchmark's). */
export async function startSidecar(db: BenchDb): Promise<Child> {
  const sidecar = new Child(['worker', '--poll-interval', '200'], { DATABASE_URL: db.roles.sidecarUrl, SQLML_READER_URL: db.roles.readerUrl, SQLML_LOG_LEVEL: 'info' });
  await sidecar.waitFor(/sidecar started/);
  return sidecar;
}

/**
 * From the enqueuing statement's return to the job's commit as ready, heard by LISTEN
 * ml_job_done (ml_wait polls, with pauses up to 0.25 s, which would add to the figure).
 */
export async function secondsToReady(db: BenchDb, enqueue: string, params: unknown[]): Promise<number> {
  const client = await db.pool.connect();
  let cleanup = () => {};
  try {
    await client.query('LISTEN ml_job_done');
    const done = new Map<string, number>();
    const heard = (m: { payload?: string }) => void done.set(m.payload ?? '', performance.now());
    client.on('notification', heard);
    cleanup = () => client.removeListener('notification', heard);
    const { rows } = await client.query(enqueue, params);
    const started = performance.now();
    const job = String(rows[0].job);
    await db.pool.query('SELECT ml_wait($1)', [job]); // raises if the job failed
    while (!done.has(job)) await new Promise((r) => setTimeout(r, 5));
    return (done.get(job)! - started) / 1000;
  } finally {
    cleanup();
    await client.query('UNLISTEN ml_job_done');
    client.release();
  }
}
