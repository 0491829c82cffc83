import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

// A database as the first layout (sql/0NN_*.sql, one migration per feature) left it after
// training two models (test/fixtures/layout-1-trained.sql says how it was made): `sqlml install`
// must upgrade it and keep its models.

/** Restores the fixture as the sidecar's role (it then owns what the first layout's installer owned). */
export async function restoreLayout1(adminUrl: string, sidecarUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  // the role the fixture's model was granted to
  await admin.query(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'analyst') THEN CREATE ROLE analyst; END IF; END $$`);
  await admin.end();
  const c = new pg.Client({ connectionString: sidecarUrl });
  await c.connect();
  try {
    await c.query(readFileSync(join(import.meta.dirname, 'fixtures', 'layout-1-trained.sql'), 'utf8'));
  } finally {
    await c.end();
  }
}
