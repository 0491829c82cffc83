import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePool } from '../src/db/connect.ts';
import { install } from '../src/db/migrate.ts';
import { provisionRoles } from '../src/db/roles.ts';
import { dumpSchema, dumpTableTypes } from '../src/db/schema-dump.ts';
import { loadDemo } from '../src/demo/superstore.ts';
import { freshDatabase, rows, TEST_PASSWORDS, type TestDb } from './helpers.ts';
import { restoreLayout1 } from './layout1.ts';

// The SQL surface: each function and view defined once, a fresh install equal to the checked-in
// sql/schema.sql, and a database of the first layout, trained, upgraded with its models intact.

const SQL = join(import.meta.dirname, '..', 'sql');
const DUMPED = readFileSync(join(SQL, 'schema.sql'), 'utf8');

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('schema');
});
afterAll(async () => t?.close());

describe('the SQL surface', () => {
  it('defines each function, procedure and view in exactly one file, none in a migration', () => {
    const where = new Map<string, string[]>();
    const files = [
      ...readdirSync(join(SQL, 'api')).map((f) => join('api', f)),
      ...readdirSync(join(SQL, 'migrations')).filter((f) => f.endsWith('.sql')).map((f) => join('migrations', f)),
      'migrations/legacy/from_layout_1.sql',
    ];
    for (const f of files) {
      const text = readFileSync(join(SQL, f), 'utf8').replace(/--.*$/gm, '');
      for (const m of text.matchAll(/^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE|VIEW)\s+([@\w.]+)\s*\(?/gim)) {
        where.set(m[1]!, [...(where.get(m[1]!) ?? []), f]);
      }
    }
    expect(where.size).toBeGreaterThan(80);
    // (overloads of one name, e.g. ml_rfm's typed and text forms, live in the same file)
    expect([...where].filter(([, fs]) => new Set(fs).size > 1 || fs.some((f) => f.startsWith('migrations')))).toEqual([]);
  });

  it('a fresh install equals sql/schema.sql (after a change: npm run schema:dump)', async () => {
    const pool = makePool(t.roles.sidecarUrl, 1);
    try {
      const major = (await rows<{ v: string }>(pool, `SELECT (current_setting('server_version_num')::int / 10000)::text AS v`))[0]!.v;
      expect(DUMPED.split('\n')[0]).toContain(`PostgreSQL ${major}`);
      expect(await dumpSchema(pool)).toBe(DUMPED);
      expect(await dumpTableTypes(pool)).toBe(readFileSync(join(import.meta.dirname, '..', 'src', 'store', 'schema.ts'), 'utf8'));
    } finally {
      await pool.end();
    }
  });

  it('install twice changes nothing', async () => {
    const pool = makePool(t.roles.sidecarUrl, 1);
    try {
      expect(await install(pool)).toEqual([]);
      expect(await dumpSchema(pool)).toBe(DUMPED);
    } finally {
      await pool.end();
    }
  });
});

describe('upgrading a database that the first layout made and trained', () => {
  it('keeps its models: scores, retrains, drops; and reaches the same surface as a fresh install', async () => {
    const db = `t_layout1_${Math.random().toString(16).slice(2, 8)}`;
    await t.pool.query(`CREATE DATABASE ${db}`);
    const u = new URL(t.url);
    u.pathname = `/${db}`;
    const adminUrl = u.toString();
    const roles = await provisionRoles(adminUrl, TEST_PASSWORDS);
    await restoreLayout1(adminUrl, roles.sidecarUrl);
    const admin = makePool(adminUrl, 2);
    const side = makePool(roles.sidecarUrl, 2);
    try {
      await loadDemo(admin);
      expect(await install(side)).toEqual([1, 2, 3, 4]);
      expect(await dumpSchema(side)).toBe(DUMPED);
      const { Worker } = await import('../src/queue/worker.ts');
      const wpool = makePool(roles.sidecarUrl, 4, { pinned: true });
      const worker = new Worker(wpool, { connectionString: roles.sidecarUrl, readerConnectionString: roles.readerUrl, pollIntervalMs: 300 });
      await worker.start();
      try {
        const [p] = await rows<{ n: string; agree: string }>(
          admin,
          `SELECT count(*) AS n, count(*) FILTER (WHERE p.centroid_id = seg_old_predict((input->>'recency_days')::float8, (input->>'frequency')::float8,
                    (input->>'monetary')::float8, (input->>'avg_basket')::float8, (input->>'discount_share')::float8, input->>'segment', input->>'region')) AS agree
             FROM ml_predict('seg_old', 'SELECT * FROM demo.customer_features') p`,
        );
        expect(Number(p!.n)).toBe(793);
        expect(Number(p!.agree)).toBe(793);
        const [c] = await rows<{ n: string }>(admin, `SELECT count(churn_old_predict(recency_days, frequency, monetary, segment)) AS n FROM demo.customer_features`);
        expect(Number(c!.n)).toBe(793);
        await admin.query(`CALL ml_train('seg_old', 'kmeans', $$SELECT * FROM demo.customer_features$$, '{"num_clusters": 3, "exclude": ["customer_id"], "seed": 2}')`);
        expect((await rows<{ v: number }>(admin, `SELECT max(version) AS v FROM ml_models WHERE model_name = 'seg_old' AND state = 'ready'`))[0]!.v).toBe(2);
        expect(await rows<{ n: number }>(admin, `SELECT ml_drop_model('churn_old') AS n`)).toEqual([{ n: 1 }]);
        expect(await rows(admin, `SELECT proname FROM pg_proc WHERE proname LIKE 'churn_old%' OR proname LIKE 'm2\\_%'`)).toEqual([]);
      } finally {
        await worker.stop();
        await wpool.end();
      }
    } finally {
      await admin.end();
      await side.end();
    }
  });
});
