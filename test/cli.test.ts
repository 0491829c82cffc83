import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, rows, type TestDb } from './helpers.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'sqlml.mjs');
const env = (extra: Record<string, string | undefined> = {}) => {
  const e: Record<string, string | undefined> = { ...process.env, SQLML_LOG_LEVEL: 'info', ...extra };
  return e as NodeJS.ProcessEnv;
};

function waitForOutput(child: ChildProcess, pattern: RegExp, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; output so far:\n${out}`)), ms);
    const onData = (b: Buffer) => {
      out += b.toString();
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ${pattern}:\n${out}`));
    });
  });
}

function exitCode(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.on('exit', (code) => resolve(code));
  });
}

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('cli', { demo: true });
});
afterAll(async () => t?.close());

describe('the sqlml command', () => {
  it('--help lists install, worker and start', () => {
    const r = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/install/);
    expect(r.stdout).toMatch(/worker/);
    expect(r.stdout).toMatch(/start/);
  });

  it('install is idempotent', () => {
    const r = spawnSync(process.execPath, [BIN, 'install', '--database-url', t.url], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('sqlml is up to date');
    expect(r.status).toBe(0);
  });

  it('worker: a real child process serves jobs and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'worker', '--poll-interval', '500'], { env: env({ DATABASE_URL: t.url }) });
    try {
      await waitForOutput(child, /sidecar started/, 30_000);
      await t.pool.query(`CALL ml_train('cli_seg', 'kmeans', 'SELECT frequency, monetary FROM demo.customer_features', '{"num_clusters": 3}')`);
      const [m] = await rows<{ state: string }>(t.pool, `SELECT state FROM ml_models WHERE model_name = 'cli_seg'`);
      expect(m!.state).toBe('ready');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exitCode(child)).toBe(0);
  });

  it('worker refuses a schema newer than itself, with a clear message', async () => {
    await t.pool.query(`INSERT INTO ml.migrations (version, name) VALUES (999, '999_future.sql')`);
    try {
      const r = spawnSync(process.execPath, [BIN, 'worker', '--database-url', t.url], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/schema is at version 999, newer than this sqlml/);
    } finally {
      await t.pool.query(`DELETE FROM ml.migrations WHERE version = 999`);
    }
  });

  it('start: boots an embedded PostgreSQL, installs, loads the demo and trains from psql-style SQL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sqlml-start-'));
    chmodSync(dir, 0o755);
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, 'start', '--data-dir', join(dir, 'pgdata'), '--port', String(port)], {
      env: env({ DATABASE_URL: undefined }),
    });
    try {
      const out = await waitForOutput(child, /sidecar started/, 120_000);
      const url = /psql '([^']+)'/.exec(out)![1]!;
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CALL ml_train('segments', 'kmeans', $$SELECT * FROM demo.customer_features$$, '{"num_clusters": 4, "exclude": ["customer_id"], "seed": 1}')`);
        const r = await c.query(
          `SELECT count(*) AS n FROM demo.customer_features WHERE segments_predict(recency_days, frequency, monetary, avg_basket, discount_share, segment, region) BETWEEN 1 AND 4`,
        );
        expect(Number(r.rows[0].n)).toBe(793);
      } finally {
        await c.end();
      }
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exitCode(child)).toBe(0);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}
