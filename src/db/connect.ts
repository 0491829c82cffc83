import pg from 'pg';

export type Pool = pg.Pool;
export type Client = pg.PoolClient | pg.Client;

// int8 (bigint) job ids come back as strings by default; keep them strings (exact) and parse
// numeric/float8 as JS numbers only where we read them explicitly.
/**
 * The sidecar's sessions resolve names in the catalog first and in pg_temp last (nothing a user
 * creates is found by name), and read string literals one way whatever the database's default.
 */
export const PINNED_SEARCH_PATH = '-c search_path=pg_catalog,pg_temp -c standard_conforming_strings=on';

export function makePool(connectionString: string, max = 10, opts: { pinned?: boolean } = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, keepAlive: true, application_name: 'sqlml', ...(opts.pinned ? { options: PINNED_SEARCH_PATH } : {}) });
  // An idle client that loses its connection (server restart) emits 'error' on the pool; without
  // a listener that would crash the process. The next checkout gets a fresh connection.
  pool.on('error', () => undefined);
  // A checked-out client whose connection dies (pg_terminate_backend, a restart) emits 'error'
  // too; the query in flight rejects, and the process must not crash on the event.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

export function resolveDatabaseUrl(flag?: string): string | undefined {
  return flag ?? process.env.DATABASE_URL ?? undefined;
}

/** Quote an identifier exactly as PostgreSQL's quote_ident / format('%I') would. */
export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/**
 * Quote a string literal exactly as PostgreSQL's quote_literal / format('%L'): with a backslash
 * in it, an E'' literal with backslashes doubled, which reads the same whatever
 * standard_conforming_strings says (generated function bodies are parsed in the caller's session).
 */
export function quoteLiteral(value: string): string {
  const quoted = "'" + value.replace(/'/g, "''") + "'";
  return value.includes('\\') ? 'E' + quoted.replace(/\\/g, '\\\\') : quoted;
}

/** Runs `fn` in a transaction on one pooled connection: COMMIT if it returns, ROLLBACK if it throws. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
