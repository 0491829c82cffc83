import { Command, Option } from 'commander';
import { threadEntry } from './models/kmeans/threads.ts';
import { forestThreadEntry } from './models/trees/forest.ts';
import { hdbscanHelperEntry, hdbscanThreadEntry } from './models/hdbscan/off-thread.ts';
import { eigenThreadEntry } from './models/pca/eigen.ts';
import { warmUp } from './models/warmup.ts';
import { randomBytes } from 'node:crypto';
import { makePool, resolveDatabaseUrl } from './db/connect.ts';
import type { EmbeddedServer } from './db/embedded.ts';
import { MissingRights, install } from './db/migrate.ts';
import { DEFAULT_READER_ROLE, doctor, provisionRoles } from './db/roles.ts';
import { Worker } from './queue/worker.ts';
import { log } from './util/log.ts';
import { messageOf } from './util/errors.ts';
import { writeFileSync } from 'node:fs';

const program = new Command();
program.name('sqlml').description('Machine learning for any PostgreSQL, driven from plain SQL').showHelpAfterError();

const urlOption = () => new Option('--database-url <url>', 'PostgreSQL connection string (default: $DATABASE_URL)');
const readerOption = () => new Option('--reader-url <url>', "the reader role's connection string (default: $SQLML_READER_URL); see docs/security.md");

program
  .command('install')
  .description('create or migrate the sqlml schema (idempotent)')
  .addOption(urlOption())
  .option('--schema <name>', 'schema for the ml_* functions', 'public')
  .option('--reader-role <name>', `the role the sidecar reads training queries as (default: as installed, else ${DEFAULT_READER_ROLE})`)
  .action(async (o: { databaseUrl?: string; schema: string; readerRole?: string }) => {
    const url = requireUrl(o.databaseUrl);
    const pool = makePool(url, 1);
    try {
      const applied = await install(pool, o.schema, { readerRole: o.readerRole });
      console.log(applied.length ? `sqlml installed: applied migrations ${applied.join(', ')}` : 'sqlml is up to date');
    } catch (err) {
      if (!(err instanceof MissingRights)) throw err;
      console.error(err.message);
      process.exitCode = 2;
    } finally {
      await pool.end();
    }
  });

program
  .command('setup-roles')
  .description("as an administrator: create the sidecar and reader roles (or reset their passwords) and grant what the sidecar needs in this database")
  .addOption(urlOption())
  .option('--schema <name>', 'schema for the ml_* functions', 'public')
  .action(async (o: { databaseUrl?: string; schema: string }) => {
    const url = requireUrl(o.databaseUrl);
    const urls = await provisionRoles(url, { sidecarPassword: secret(), readerPassword: secret(), apiSchema: o.schema });
    console.log(`roles ready. Install and run the sidecar with:\n\n  sqlml install --database-url '${urls.sidecarUrl}'\n  sqlml worker --database-url '${urls.sidecarUrl}' --reader-url '${urls.readerUrl}'\n`);
  });

program
  .command('doctor')
  .description("report what the current set-up exposes (run with the sidecar's connection)")
  .addOption(urlOption())
  .addOption(readerOption())
  .action(async (o: { databaseUrl?: string; readerUrl?: string }) => {
    const url = requireUrl(o.databaseUrl);
    const pool = makePool(url, 1, { pinned: true });
    try {
      const findings = await doctor(pool, o.readerUrl ?? process.env.SQLML_READER_URL);
      for (const f of findings) console.log(`${f.level === 'ok' ? 'ok  ' : f.level === 'warn' ? 'warn' : 'FAIL'}  ${f.what}`);
      if (findings.some((f) => f.level === 'fail')) process.exitCode = 1;
    } finally {
      await pool.end();
    }
  });

program
  .command('worker')
  .description('run the sidecar: train the models requested from SQL')
  .addOption(urlOption())
  .addOption(readerOption())
  .option('--concurrency <n>', 'jobs run at once', toInt, 1)
  .option('--lease-seconds <n>', 'a silent job is taken over after this long', toInt, 30)
  .option('--poll-interval <ms>', 'polling backstop for missed notifications', toInt, 2000)
  .option('--statement-timeout <ms>', 'timeout of a training query', toInt, 15 * 60 * 1000)
  .option('--max-memory <mb>', 'memory budget of one training set; larger ones are refused', toInt, 4096)
  .option('--reader-work-mem <mb>', "work_mem of the sessions that read training data (the rows wait in PostgreSQL's memory, not on disk, on their way out)", toInt, 256)
  .action(async (o: WorkerFlags) => {
    const url = requireUrl(o.databaseUrl);
    const readerUrl = o.readerUrl ?? process.env.SQLML_READER_URL;
    if (!readerUrl) {
      console.error('no reader connection: pass --reader-url or set SQLML_READER_URL (the reader role reads training queries; see docs/security.md, or `sqlml setup-roles`)');
      process.exit(2);
    }
    await runWorker(url, readerUrl, o, null);
  });

program
  .command('report')
  .description("write a model's report: one self-contained HTML page (made as your role: you see what it may see)")
  .argument('<model>', 'model name, or name@version')
  .addOption(urlOption())
  .option('--out <file>', 'where to write the page', 'report.html')
  .option('--query <sql>', "the rows to draw and profile (default: the model's training query, if your role asked for the training)")
  .option('--schema <name>', 'schema of the ml_* functions', 'public')
  .action(async (model: string, o: { databaseUrl?: string; out: string; query?: string; schema: string }) => {
    const { ModelNotVisible, modelReport } = await import('./report/model-report.ts');
    const { readOnly } = await import('./report/session.ts');
    const pool = makePool(requireUrl(o.databaseUrl), 1);
    try {
      const html = await readOnly(pool, o.schema, (client) => modelReport(client, model, { query: o.query }));
      writeFileSync(o.out, html);
      console.log(`wrote ${o.out} (${Math.round(html.length / 1024)} kB)`);
    } catch (err) {
      if (!(err instanceof ModelNotVisible)) throw err;
      console.error(err.message);
      process.exitCode = 2;
    } finally {
      await pool.end();
    }
  });

program
  .command('console')
  .description('a read-only web console: models, live job progress, reports, exploring a query (shows what the role of the URL may see)')
  .addOption(urlOption())
  .option('--host <host>', 'address to listen on; any other than loopback needs the printed token', '127.0.0.1')
  .option('--port <n>', 'port to listen on', toInt, 8321)
  .option('--schema <name>', 'schema of the ml_* functions', 'public')
  .action(async (o: { databaseUrl?: string; host: string; port: number; schema: string }) => {
    const { startConsole } = await import('./console/server.ts');
    const running = await startConsole({ databaseUrl: requireUrl(o.databaseUrl), host: o.host, port: o.port, apiSchema: o.schema });
    console.log(`sqlml console: ${running.url}`);
  });

program
  .command('start')
  .description('all in one: embedded PostgreSQL (unless a URL is given), install, demo data, sidecar')
  .addOption(urlOption())
  .option('--data-dir <dir>', 'data folder of the embedded PostgreSQL (kept across restarts)', '.sqlml/pgdata')
  .option('--port <n>', 'port of the embedded PostgreSQL', toInt, 54329)
  .option('--no-demo', 'do not load the demo data')
  .option('--concurrency <n>', 'jobs run at once', toInt, 2)
  .option('--console-port <n>', 'port of the web console on 127.0.0.1 (0: any free port)', toInt, 8321)
  .option('--no-console', 'do not start the web console')
  .action(async (o: WorkerFlags & { dataDir: string; port: number; demo: boolean; console: boolean; consolePort: number }) => {
    // loaded by the commands that use them: a `worker` holds only what training needs (its memory, docs/scale.md)
    const { startEmbedded } = await import('./db/embedded.ts');
    const { loadDemo } = await import('./demo/superstore.ts');
    const { startConsole } = await import('./console/server.ts');
    let url = resolveDatabaseUrl(o.databaseUrl);
    let server: EmbeddedServer | null = null;
    if (!url) {
      console.log(`starting embedded PostgreSQL in ${o.dataDir} on port ${o.port} ...`);
      server = await startEmbedded({ dataDir: o.dataDir, port: o.port });
      url = server.url;
    }
    // The sidecar runs as a role of its own, and reads training queries as the reader role;
    // `url` stays the administrator's, for you and for the demo data.
    const roles = await sidecarRoles(url);
    const admin = makePool(url, 2);
    const side = makePool(roles.sidecarUrl, 2);
    try {
      await install(side, 'public');
      if (o.demo && (await loadDemo(admin))) console.log('demo data loaded: demo.orders, demo.customer_features');
    } finally {
      await admin.end();
      await side.end();
    }
    console.log(`
sqlml is running. Connect with:

  psql '${url}'

and try:

  CALL ml_train('segments', 'kmeans',
                $$SELECT * FROM demo.customer_features$$,
                '{"num_clusters": 4, "exclude": ["customer_id"], "seed": 1}');
  SELECT * FROM ml_evaluate('segments');
  SELECT customer_id, segments_predict(recency_days, frequency, monetary, avg_basket,
                                       discount_share, segment, region) FROM demo.customer_features LIMIT 5;

Stop with Ctrl-C.`);
    if (o.console) {
      // a port in use (another sqlml, say) costs the console its usual address, not the start
      const web = await startConsole({ databaseUrl: url, port: o.consolePort }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EADDRINUSE') throw err;
        console.log(`port ${o.consolePort} is in use; the console takes a free one`);
        return startConsole({ databaseUrl: url, port: 0 });
      });
      console.log(`\nconsole (models, live job progress, reports): ${web.url}\n`);
    }
    await runWorker(roles.sidecarUrl, roles.readerUrl, { ...o, leaseSeconds: 30, pollInterval: 2000, statementTimeout: 15 * 60 * 1000, maxMemory: 4096, readerWorkMem: 256 }, server);
  });

interface WorkerFlags {
  databaseUrl?: string;
  readerUrl?: string;
  concurrency: number;
  leaseSeconds: number;
  pollInterval: number;
  statementTimeout: number;
  readerWorkMem: number;
  maxMemory: number;
}

async function runWorker(url: string, readerUrl: string, o: WorkerFlags, server: EmbeddedServer | null): Promise<void> {
  const pool = makePool(url, o.concurrency + 2, { pinned: true });
  const worker = new Worker(pool, {
    connectionString: url,
    readerConnectionString: readerUrl,
    concurrency: o.concurrency,
    leaseSeconds: o.leaseSeconds,
    pollIntervalMs: o.pollInterval,
    statementTimeoutMs: o.statementTimeout,
    readerWorkMemMb: o.readerWorkMem,
    maxMemoryMb: o.maxMemory,
  });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: finishing the current iteration and releasing running jobs`);
    await worker.stop();
    await pool.end().catch(() => undefined);
    if (server) await server.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // Bundle the k-means, forest and HDBSCAN threads now (~0.15 s each) rather than inside the first large job, and run
  // the tree code once on synthetic rows so the first model is fitted by optimised code.
  threadEntry();
  forestThreadEntry();
  hdbscanThreadEntry();
  hdbscanHelperEntry();
  eigenThreadEntry();
  const warming = performance.now();
  await warmUp();
  log.info('warmed up', { ms: Math.round(performance.now() - warming) });
  await worker.start();
}

const secret = () => randomBytes(18).toString('base64url');

/**
 * `sqlml start`: the sidecar and reader roles, made with the administrator's URL (fresh
 * passwords each start). A database that an earlier sqlml installed as another role keeps that
 * role as its sidecar (it owns schema ml).
 */
async function sidecarRoles(adminUrl: string): Promise<{ sidecarUrl: string; readerUrl: string }> {
  const admin = makePool(adminUrl, 1);
  let owner: string | null;
  let me: string;
  try {
    const { rows } = await admin.query<{ owner: string | null; me: string }>(
      `SELECT (SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = 'ml') AS owner, current_user::text AS me`,
    );
    ({ owner, me } = rows[0]!);
  } finally {
    await admin.end();
  }
  const urls = await provisionRoles(adminUrl, { sidecarPassword: secret(), readerPassword: secret() });
  return owner === me ? { sidecarUrl: adminUrl, readerUrl: urls.readerUrl } : urls;
}

function requireUrl(flag?: string): string {
  const url = resolveDatabaseUrl(flag);
  if (!url) {
    console.error('no database: pass --database-url or set DATABASE_URL (or use `sqlml start` for an embedded PostgreSQL)');
    process.exit(2);
  }
  return url;
}

function toInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got "${v}"`);
  return n;
}

program.parseAsync(process.argv).catch((err) => {
  console.error(`sqlml: ${messageOf(err)}`);
  process.exit(1);
});
