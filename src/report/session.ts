import type pg from 'pg';
import { quoteIdent } from '../db/connect.ts';

// The report's and the console's database session: the caller's own role (so row-level
// security decides what they show), names resolved in the catalog and then the API schema only,
// and every statement in a READ ONLY transaction that is rolled back: looking never writes.

export async function readOnly<T>(pool: pg.Pool, apiSchema: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(`SET LOCAL search_path TO pg_catalog, ${quoteIdent(apiSchema)}, pg_temp`);
    return await fn(client);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}
