import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { quoteIdent, type Pool } from '../src/db/connect.ts';

// The first layout's migrations as they shipped (sql/0NN_*.sql, one per feature), kept as test
// data: `sqlml install` must upgrade a database they made and keep its models.

const DIR = join(import.meta.dirname, 'fixtures', 'layout-1');

/** Installs the first layout as its installer did (one transaction, ml.migrations by file name). */
export async function installLayout1(pool: Pool, apiSchema = 'public'): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('CREATE SCHEMA IF NOT EXISTS ml');
    await c.query(`CREATE TABLE IF NOT EXISTS ml.migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    for (const f of readdirSync(DIR).filter((x) => x.endsWith('.sql')).sort()) {
      await c.query(readFileSync(join(DIR, f), 'utf8').replaceAll('@api@', quoteIdent(apiSchema)));
      if (f.startsWith('001_')) await c.query(`INSERT INTO ml.settings (key, value) VALUES ('api_schema', $1)`, [apiSchema]);
      await c.query('INSERT INTO ml.migrations (version, name) VALUES ($1, $2)', [Number(f.slice(0, 3)), f]);
    }
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK');
    throw err;
  } finally {
    c.release();
  }
}
