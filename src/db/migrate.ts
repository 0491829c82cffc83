import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PoolClient } from 'pg';
import { quoteIdent, quoteLiteral, withTransaction, type Pool } from './connect.ts';
import { DEFAULT_READER_ROLE } from './roles.ts';

// sql/migrations/NNN_*.sql: state (tables, columns, types, data), each run once, recorded in
// ml.migrations. sql/api/*.sql: behaviour (every function, procedure, view, policy and
// trigger, each defined once with CREATE OR REPLACE), re-applied by every install after the
// pending migrations. A changed signature or return type needs a DROP in the api file first.

const SQL_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'sql');
// Any fixed number works; all sqlml installers and sidecars agree on it.
const INSTALL_LOCK = 7346101;

/** The api files, in the order they depend on each other (views need sharing's functions, ml_wait the ml_jobs view). */
export const API_FILES = ['options', 'options_clustering', 'options_supervised', 'sharing', 'models', 'training_queries', 'in_database', 'queue', 'predict', 'evaluate', 'explain', 'profile', 'explore', 'rfm', 'clv', 'pca'];

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function migrations(): Migration[] {
  const dir = join(SQL_DIR, 'migrations');
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f, sql: readFileSync(join(dir, f), 'utf8') }));
}

/** Every api file's text, in dependency order. */
export function apiSql(): { name: string; sql: string }[] {
  const present = new Set(readdirSync(join(SQL_DIR, 'api')));
  const missing = [...present].filter((f) => f.endsWith('.sql') && !API_FILES.includes(f.slice(0, -4)));
  if (missing.length) throw new Error(`sql/api has files that API_FILES does not order: ${missing.join(', ')}`);
  return API_FILES.map((f) => ({ name: `${f}.sql`, sql: readFileSync(join(SQL_DIR, 'api', `${f}.sql`), 'utf8') }));
}

export const LATEST_VERSION = Math.max(...migrations().map((m) => m.version));

/** The first layout (sql/0NN_*.sql, one migration per feature) recorded these names. */
const LAYOUT_1_MARK = '001_schema.sql';

export class SchemaTooNew extends Error {}

/**
 * Applies the migrations the database lacks, then every api file, in one transaction under an
 * advisory lock, so concurrent installers serialize and a failure leaves nothing half-done.
 * A database made by the first layout is first brought to the baseline's state. Returns the
 * versions applied (empty when already up to date).
 */
export async function install(pool: Pool, apiSchema = 'public', opts: { readerRole?: string } = {}): Promise<number[]> {
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [INSTALL_LOCK]);
    await checkRights(client, apiSchema, opts.readerRole);
    await client.query('CREATE SCHEMA IF NOT EXISTS ml');
    await client.query(`CREATE TABLE IF NOT EXISTS ml.migrations (
      version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number; name: string }>('SELECT version, name FROM ml.migrations');
    const applied: number[] = [];
    if (rows.some((r) => r.name === LAYOUT_1_MARK)) {
      await client.query(readFileSync(join(SQL_DIR, 'migrations', 'legacy', 'from_layout_1.sql'), 'utf8'));
      await client.query('DELETE FROM ml.migrations');
      await client.query(`INSERT INTO ml.migrations (version, name) VALUES (1, '001_baseline.sql')`);
      rows.splice(0, rows.length, { version: 1, name: '001_baseline.sql' });
      applied.push(1);
    }
    const have = new Set(rows.map((r) => r.version));
    const newest = Math.max(0, ...have);
    if (newest > LATEST_VERSION) {
      throw new SchemaTooNew(
        `the database's sqlml schema is at version ${newest}, newer than this sqlml (version ${LATEST_VERSION}); upgrade sqlml`,
      );
    }
    let schema = apiSchema;
    if (have.size > 0) {
      const r = await client.query<{ value: string }>(`SELECT value FROM ml.settings WHERE key = 'api_schema'`);
      schema = r.rows[0]?.value ?? apiSchema;
    }
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    for (const m of migrations()) {
      if (have.has(m.version)) continue;
      await client.query(m.sql);
      if (m.version === 1) {
        await client.query(`INSERT INTO ml.settings (key, value) VALUES ('api_schema', $1)`, [schema]);
      }
      await client.query('INSERT INTO ml.migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    // SQL function bodies are checked when called: a file may name a function of a later one.
    await client.query('SET LOCAL check_function_bodies = off');
    // @api@ is the schema as an identifier, @api_name@ its name as a string literal.
    for (const f of apiSql()) await client.query(f.sql.replaceAll('@api_name@', quoteLiteral(schema)).replaceAll('@api@', quoteIdent(schema)));
    if (opts.readerRole) {
      await client.query(`INSERT INTO ml.settings (key, value) VALUES ('reader_role', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, [opts.readerRole]);
    }
    return applied;
  });
}

export class MissingRights extends Error {}

/**
 * What installing needs (docs/security.md): CREATE on the database (schema ml, and one schema of
 * training queries per role), CREATE on the API schema, and an existing reader role. A missing
 * right fails with the statements an administrator runs.
 */
async function checkRights(client: PoolClient, apiSchema: string, readerRole?: string): Promise<void> {
  const settings = (await client.query<{ ok: boolean }>(`SELECT to_regclass('ml.settings') IS NOT NULL AS ok`)).rows[0]!.ok;
  const installed = settings ? `(SELECT value FROM ml.settings WHERE key = 'reader_role')` : 'NULL::text';
  const { rows } = await client.query<{ me: string; db: string; db_create: boolean; api_exists: boolean; api_create: boolean; installed_reader: string | null; reader_exists: boolean }>(
    `SELECT current_user::text AS me, current_database()::text AS db, has_database_privilege(current_database(), 'CREATE') AS db_create,
            to_regnamespace(quote_ident($1)) IS NOT NULL AS api_exists,
            coalesce(has_schema_privilege(to_regnamespace(quote_ident($1)), 'CREATE'), false) AS api_create,
            ${installed} AS installed_reader,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = coalesce($2, ${installed}, '${DEFAULT_READER_ROLE}')) AS reader_exists`,
    [apiSchema, readerRole ?? null],
  );
  const r = rows[0]!;
  const reader = readerRole ?? r.installed_reader ?? DEFAULT_READER_ROLE;
  const missing: string[] = [];
  if (!r.db_create) missing.push(`GRANT CREATE ON DATABASE ${quoteIdent(r.db)} TO ${quoteIdent(r.me)};`);
  if (r.api_exists && !r.api_create) missing.push(`GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(apiSchema)} TO ${quoteIdent(r.me)};`);
  if (!r.reader_exists) missing.push(`CREATE ROLE ${quoteIdent(reader)} LOGIN NOINHERIT PASSWORD '<a password for the sidecar's --reader-url>';`);
  if (missing.length) {
    throw new MissingRights(`role "${r.me}" cannot install sqlml here yet; as an administrator, run:\n\n  ${missing.join('\n  ')}\n\nthen run sqlml install again (docs/security.md explains each right)`);
  }
}

/** The sidecar refuses to serve a schema it does not know (older: run install; newer: upgrade). */
export async function checkSchema(pool: Pool): Promise<{ apiSchema: string }> {
  const { rows } = await pool.query<{ version: number | null; api: string | null; layout1: boolean }>(
    `SELECT (SELECT max(version) FROM ml.migrations) AS version,
            (SELECT value FROM ml.settings WHERE key = 'api_schema') AS api,
            EXISTS (SELECT 1 FROM ml.migrations WHERE name = '${LAYOUT_1_MARK}') AS layout1`,
  ).catch(() => ({ rows: [{ version: null, api: null, layout1: false }] }));
  const v = rows[0]?.version ?? null;
  if (v === null) throw new Error('sqlml is not installed in this database: run `sqlml install` first');
  if (rows[0]!.layout1) throw new Error("the database's sqlml schema is of an earlier layout; run `sqlml install` to migrate it");
  if (v > LATEST_VERSION) {
    throw new SchemaTooNew(`the database's sqlml schema is at version ${v}, newer than this sqlml (${LATEST_VERSION}); upgrade sqlml`);
  }
  if (v < LATEST_VERSION) throw new Error(`the database's sqlml schema is at version ${v}; run \`sqlml install\` to migrate to ${LATEST_VERSION}`);
  return { apiSchema: rows[0]!.api ?? 'public' };
}
