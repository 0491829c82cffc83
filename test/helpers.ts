import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { makePool, type Pool } from '../src/db/connect.ts';
import { install } from '../src/db/migrate.ts';
import { provisionRoles, type RoleUrls } from '../src/db/roles.ts';
import { loadDemo } from '../src/demo/superstore.ts';
import { Worker, type WorkerOptions } from '../src/queue/worker.ts';

/** The roles of docs/security.md, with fixed passwords (roles are cluster-wide, shared by the test files). */
export const TEST_PASSWORDS = { sidecarPassword: 'sqlml-test-sidecar', readerPassword: 'sqlml-test-reader' };

export interface TestDb {
  url: string; // an administrator's (superuser) connection: the tests' user-side statements
  pool: Pool;
  /** The least-privilege sidecar's and reader's connections, as docs/security.md sets them up. */
  roles: RoleUrls;
  /** Starts an in-process sidecar on this database (stopped by close()). */
  worker(opts?: Partial<WorkerOptions>): Promise<Worker>;
  close(): Promise<void>;
}

/** A database of its own for one test file: sqlml installed, optionally the demo data. */
export async function freshDatabase(name: string, opts: { demo?: boolean } = {}): Promise<TestDb> {
  const admin = inject('adminUrl');
  const db = `t_${name}_${randomBytes(3).toString('hex')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`CREATE DATABASE ${db}`);
  await c.end();
  const u = new URL(admin);
  u.pathname = `/${db}`;
  const url = u.toString();
  const pool = makePool(url, 10);
  const roles = await provisionRoles(url, TEST_PASSWORDS);
  const installer = makePool(roles.sidecarUrl, 1);
  await install(installer);
  await installer.end();
  if (opts.demo) await loadDemo(pool);
  const workers: { worker: Worker; pool: Pool }[] = [];
  return {
    url,
    pool,
    roles,
    async worker(o = {}) {
      const wpool = makePool(roles.sidecarUrl, 6, { pinned: true });
      const w = new Worker(wpool, { connectionString: roles.sidecarUrl, readerConnectionString: roles.readerUrl, pollIntervalMs: 500, ...o });
      await w.start();
      workers.push({ worker: w, pool: wpool });
      return w;
    },
    async close() {
      await Promise.all(workers.map(async (w) => {
        await w.worker.stop();
        await w.pool.end();
      }));
      await pool.end();
    },
  };
}

/** Runs a statement and returns its rows. */
export async function rows<T = Record<string, unknown>>(pool: Pool, text: string, params: unknown[] = []): Promise<T[]> {
  return (await pool.query(text, params)).rows as T[];
}

/** The error a statement raises (fails the test if it succeeds). */
export async function errorOf(pool: Pool, text: string, params: unknown[] = []): Promise<Error & { code?: string; hint?: string }> {
  try {
    await pool.query(text, params);
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error(`expected an error from: ${text}`);
}
