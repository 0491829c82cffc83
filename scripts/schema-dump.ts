// npm run schema:dump: installs sqlml on a fresh embedded PostgreSQL and writes sql/schema.sql
// and the ml tables' row types (src/store/schema.ts).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePool } from '../src/db/connect.ts';
import { startEmbedded } from '../src/db/embedded.ts';
import { install } from '../src/db/migrate.ts';
import { provisionRoles } from '../src/db/roles.ts';
import { dumpSchema, dumpTableTypes } from '../src/db/schema-dump.ts';

const dir = mkdtempSync(join(tmpdir(), 'sqlml-schema-'));
chmodSync(dir, 0o755);
const server = await startEmbedded({ dataDir: join(dir, 'pgdata'), port: 54900 + Math.floor(Math.random() * 90), persistent: false });
try {
  const roles = await provisionRoles(server.url, { sidecarPassword: 'schema-dump', readerPassword: 'schema-dump' });
  const pool = makePool(roles.sidecarUrl, 1);
  await install(pool);
  writeFileSync(join(import.meta.dirname, '..', 'sql', 'schema.sql'), await dumpSchema(pool));
  writeFileSync(join(import.meta.dirname, '..', 'src', 'store', 'schema.ts'), await dumpTableTypes(pool));
  await pool.end();
  console.log('wrote sql/schema.sql and src/store/schema.ts');
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
