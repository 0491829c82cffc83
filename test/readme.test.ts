import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDb } from './helpers.ts';

// Every ```sql run block of the README, in order, on a fresh database with the demo data: the
// walkthroughs a user follows from psql must work as written.

const README = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
const blocks = [...README.matchAll(/```sql run\n([\s\S]*?)```/g)].map((m) => m[1]!);

/** Splits a block into statements at semicolons that end a line (the README's style). */
function statements(block: string): string[] {
  return block
    .split(/;\s*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('readme', { demo: true });
  await t.worker({ concurrency: 2 });
});
afterAll(async () => t?.close());

describe('the README walkthroughs', () => {
  it('has runnable blocks', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(10);
  });
  it('runs every block, in order, as written', async () => {
    const c = await t.pool.connect();
    try {
      for (const [i, block] of blocks.entries()) {
        for (const sql of statements(block)) {
          const res = await c.query(sql).catch((err: Error) => {
            throw new Error(`README block ${i + 1} failed: ${err.message}\n${sql}`);
          });
          // Every query of the walkthroughs shows something.
          if (/^\s*SELECT/i.test(sql)) expect(res.rowCount, sql).toBeGreaterThan(0);
        }
      }
    } finally {
      c.release();
    }
  });
});
