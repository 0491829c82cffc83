import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDb } from './helpers.ts';

// Every ```sql run block of README.md and of every docs/*.md file, on one fresh database with the
// demo data: the quick start and the walkthroughs a user follows from psql must work as written.
// Each file's blocks run in order; the files run in the order below (a later walkthrough may use
// a model an earlier one made: tutorial-ltv-churn.md reads segments_k4 from tutorial-kmeans.md),
// then any other docs/*.md file that has such blocks, in name order.

const ROOT = join(import.meta.dirname, '..');
const ORDER = ['README.md', 'docs/tutorial-kmeans.md', 'docs/tutorial-personas.md', 'docs/tutorial-ltv-churn.md'];
const others = readdirSync(join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => `docs/${f}`)
  .filter((f) => !ORDER.includes(f))
  .sort();
const files = [...ORDER, ...others];

const blocks = files.flatMap((file) => {
  const path = join(ROOT, file);
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  return [...text.matchAll(/```sql run\n([\s\S]*?)```/g)].map((m, i) => ({ file, n: i + 1, sql: m[1]! }));
});

/**
 * Splits a block into statements at semicolons that end a line (the walkthroughs' style), except
 * inside a $$-quoted body (a procedure's or a DO block's).
 */
function statements(block: string): string[] {
  const out: string[] = [];
  let current: string[] = [];
  let inBody = false;
  for (const line of block.split('\n')) {
    current.push(line);
    if ((line.match(/\$\$/g) ?? []).length % 2 === 1) inBody = !inBody;
    if (!inBody && /;\s*$/.test(line)) {
      out.push(current.join('\n'));
      current = [];
    }
  }
  out.push(current.join('\n'));
  return out
    .map((s) => s.replace(/;\s*$/, '').replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('readme', { demo: true });
  await t.worker({ concurrency: 2 });
});
afterAll(async () => t?.close());

describe('the README and docs/ walkthroughs', () => {
  it('has runnable blocks in every walkthrough', () => {
    for (const file of ORDER) {
      expect(existsSync(join(ROOT, file)), file).toBe(true);
      expect(blocks.some((b) => b.file === file), `${file} has a sql run block`).toBe(true);
    }
    expect(blocks.length).toBeGreaterThanOrEqual(10);
  });
  it('runs every block, in order, as written', async () => {
    const c = await t.pool.connect();
    try {
      for (const { file, n, sql: block } of blocks) {
        for (const sql of statements(block)) {
          const res = await c.query(sql).catch((err: Error) => {
            throw new Error(`${file} block ${n} failed: ${err.message}\n${sql}`);
          });
          // Every query of the walkthroughs shows something.
          if (/^\s*SELECT/i.test(sql)) expect(res.rowCount, `${file} block ${n}: ${sql}`).toBeGreaterThan(0);
        }
      }
    } finally {
      c.release();
    }
  });
});
