import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { makePool, type Pool } from '../src/db/connect.ts';
import { startEmbedded } from '../src/db/embedded.ts';
import { install } from '../src/db/migrate.ts';

// Shared pieces of the benchmarks: a database (DATABASE_URL, or an embedded PostgreSQL in a
// temporary folder), timers, and the optional scikit-learn baseline.

export interface BenchDb {
  url: string;
  pool: Pool;
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
    stop = server.stop;
  }
  const pool = makePool(url, 4);
  await install(pool);
  return {
    url,
    pool,
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
