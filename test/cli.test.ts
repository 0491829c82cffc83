import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, rows, type TestDb } from './helpers.ts';
import { BIN, Child, freePort, sidecar } from './processes.ts';

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
    const r = spawnSync(process.execPath, [BIN, 'install', '--database-url', t.roles.sidecarUrl], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('sqlml is up to date');
    expect(r.status).toBe(0);
  });

  it('doctor: one line per property, exit 0 on the tested set-up; worker without a reader URL names the fix', () => {
    const r = spawnSync(process.execPath, [BIN, 'doctor', '--database-url', t.roles.sidecarUrl, '--reader-url', t.roles.readerUrl], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/^ok +the sidecar's role "ml_sidecar" owns schema ml$/m);
    expect(r.stdout).toMatch(/^ok +the reader URL logs in as the reader role$/m);
    expect(r.stdout).not.toMatch(/^FAIL/m);
    expect(r.status).toBe(0);
    const w = spawnSync(process.execPath, [BIN, 'worker', '--database-url', t.roles.sidecarUrl], { encoding: 'utf8', env: { ...process.env, SQLML_READER_URL: '' } });
    expect(w.status).toBe(2);
    expect(w.stderr).toMatch(/no reader connection: pass --reader-url or set SQLML_READER_URL/);
  });

  it('worker: a real child process serves jobs and exits 0 on SIGTERM', async () => {
    const child = await sidecar(t.roles);
    try {
      await t.pool.query(`CALL ml_train('cli_seg', 'kmeans', 'SELECT frequency, monetary FROM demo.customer_features', '{"num_clusters": 3}')`);
      const [m] = await rows<{ state: string }>(t.pool, `SELECT state FROM ml_models WHERE model_name = 'cli_seg'`);
      expect(m!.state).toBe('ready');
      // The log line says where the job's time went, phase by phase, adding up to its seconds.
      const line = (await child.waitFor(/job ready \{.*"phases"/)).split('\n').find((l) => l.includes('job ready'))!;
      const { seconds, phases } = JSON.parse(line.slice(line.indexOf('{'))) as { seconds: number; phases: Record<string, number> };
      expect(Object.keys(phases)).toEqual(['load', 'prepare', 'train', 'evaluate', 'stability', 'explain', 'write']);
      const sum = Object.values(phases).reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - seconds)).toBeLessThan(0.01);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await child.exited()).toBe(0);
  });

  it('worker refuses a schema newer than itself, with a clear message', async () => {
    await t.pool.query(`INSERT INTO ml.migrations (version, name) VALUES (999, '999_future.sql')`);
    try {
      const r = spawnSync(process.execPath, [BIN, 'worker', '--database-url', t.roles.sidecarUrl, '--reader-url', t.roles.readerUrl], { encoding: 'utf8', timeout: 30_000 });
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
    const child = new Child(['start', '--data-dir', join(dir, 'pgdata'), '--port', String(port)], { DATABASE_URL: undefined });
    try {
      const out = await child.waitFor(/sidecar started/, 120_000);
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
      // the console it printed lists the model and serves its report
      const consoleUrl = /console \(models, live job progress, reports\): (\S+)/.exec(out)![1]!;
      const headers = { cookie: `sqlml_console=${new URL(consoleUrl).searchParams.get('token')}` };
      expect(await fetch(new URL('/', consoleUrl), { headers }).then((x) => x.text())).toMatch(/segments@1/);
      const report = await fetch(new URL('/models/segments', consoleUrl), { headers });
      expect(report.status).toBe(200);
      expect(await report.text()).toMatch(/data-chart="cluster-sizes"/);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await child.exited()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });
});
