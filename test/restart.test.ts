import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePool, type Pool } from '../src/db/connect.ts';
import { startEmbedded, type EmbeddedServer } from '../src/db/embedded.ts';
import { install } from '../src/db/migrate.ts';
import { provisionRoles, type RoleUrls } from '../src/db/roles.ts';
import { TEST_PASSWORDS } from './helpers.ts';
import { freePort, sidecar, sleep, type Child } from './processes.ts';

// PostgreSQL restarted, and stopped for 30 s, under a running sidecar. This file runs its own
// embedded PostgreSQL so that the other test files' server is never interrupted.

let dir: string;
let server: EmbeddedServer;
let port: number;
let pool: Pool;
let side: Child;
let roles: RoleUrls;

async function boot(): Promise<void> {
  server = await startEmbedded({ dataDir: join(dir, 'pgdata'), port, persistent: true });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sqlml-restart-'));
  chmodSync(dir, 0o755);
  port = await freePort();
  await boot();
  pool = makePool(server.url, 4);
  roles = await provisionRoles(server.url, TEST_PASSWORDS);
  const installer = makePool(roles.sidecarUrl, 1);
  await install(installer);
  await installer.end();
  side = await sidecar(roles, '--lease-seconds', '5');
});
afterAll(async () => {
  side?.kill('SIGKILL');
  await pool?.end();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function trainOne(name: string): Promise<void> {
  // The pool may hold connections from before the restart: retry until the server answers.
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      await pool.query(`CALL ml_train($1, 'kmeans', 'SELECT x::float8 AS x FROM generate_series(1, 50) x', '{"num_clusters": 2}')`, [name]);
      return;
    } catch (err) {
      if (Date.now() > until || !/terminat|connect|ECONN|shut/i.test(String(err))) throw err;
      await sleep(200);
    }
  }
}

describe('PostgreSQL restarts under a running sidecar', () => {
  it('serves requests before, right after a restart, and after a 30 s outage, without exiting', async () => {
    await trainOne('before');

    await server.stop();
    await boot();
    await trainOne('after_restart');

    await server.stop();
    await sleep(30_000);
    await boot();
    await trainOne('after_outage');

    expect(side.process.exitCode).toBeNull();
    expect(side.output).toMatch(/listener reconnecting/);
    const { rows } = await pool.query(`SELECT model_name FROM ml_models WHERE state = 'ready' ORDER BY model_name`);
    expect(rows.map((r) => r.model_name)).toEqual(['after_outage', 'after_restart', 'before']);
    side.kill('SIGTERM');
    expect(await side.exited()).toBe(0);
  }, 180_000);
});
