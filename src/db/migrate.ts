import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quoteIdent, withTransaction, type Pool } from './connect.ts';

const SQL_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'sql');
// Any fixed number works; all sqlml installers and sidecars agree on it.
const INSTALL_LOCK = 7346101;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function migrations(): Migration[] {
  return readdirSync(SQL_DIR)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f, sql: readFileSync(join(SQL_DIR, f), 'utf8') }));
}

export const LATEST_VERSION = Math.max(...migrations().map((m) => m.version));

export class SchemaTooNew extends Error {}

/**
 * Applies the migrations the database lacks, in one transaction under an advisory lock, so
 * concurrent installers serialize and a failed migration leaves nothing half-done.
 * Returns the versions applied (empty when already up to date).
 */
export async function install(pool: Pool, apiSchema = 'public'): Promise<number[]> {
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [INSTALL_LOCK]);
    await client.query('CREATE SCHEMA IF NOT EXISTS ml');
    await client.query(`CREATE TABLE IF NOT EXISTS ml.migrations (
      version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number }>('SELECT version FROM ml.migrations');
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
    const applied: number[] = [];
    for (const m of migrations()) {
      if (have.has(m.version)) continue;
      await client.query(m.sql.replaceAll('@api@', quoteIdent(schema)));
      if (m.version === 1) {
        await client.query(`INSERT INTO ml.settings (key, value) VALUES ('api_schema', $1)`, [schema]);
      }
      await client.query('INSERT INTO ml.migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}

/** The sidecar refuses to serve a schema it does not know (older: run install; newer: upgrade). */
export async function checkSchema(pool: Pool): Promise<{ apiSchema: string }> {
  const { rows } = await pool.query<{ version: number | null; api: string | null }>(
    `SELECT (SELECT max(version) FROM ml.migrations) AS version,
            (SELECT value FROM ml.settings WHERE key = 'api_schema') AS api`,
  ).catch(() => ({ rows: [{ version: null, api: null }] }));
  const v = rows[0]?.version ?? null;
  if (v === null) throw new Error('sqlml is not installed in this database: run `sqlml install` first');
  if (v > LATEST_VERSION) {
    throw new SchemaTooNew(`the database's sqlml schema is at version ${v}, newer than this sqlml (${LATEST_VERSION}); upgrade sqlml`);
  }
  if (v < LATEST_VERSION) throw new Error(`the database's sqlml schema is at version ${v}; run \`sqlml install\` to migrate to ${LATEST_VERSION}`);
  return { apiSchema: rows[0]!.api ?? 'public' };
}
