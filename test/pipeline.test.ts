import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDb } from './helpers.ts';

// CALL ml_train where pipelines call it: procedures, DO blocks, and (refused) transaction blocks;
// and the stored-procedure pipeline of docs/tutorial-pipeline.md run twice, then once more with
// training failing.

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('pipeline', { demo: true });
  await t.worker({ concurrency: 2 });
});
afterAll(async () => t?.close());

const SMALL = `'kmeans', 'SELECT frequency, monetary FROM demo.customer_features', '{"num_clusters": 2, "seed": 1}'`;

async function jobsOf(model: string): Promise<number> {
  const r = await t.pool.query(`SELECT count(*)::int AS n FROM ml_jobs WHERE model_name = $1`, [model]);
  return r.rows[0].n;
}

describe('CALL ml_train in pipelines', () => {
  it('works in a DO block and in a procedure that calls it, with no job-id argument', async () => {
    await t.pool.query(`DO $$ BEGIN CALL ml_train('from_do', ${SMALL}); END $$`);
    await t.pool.query(`CREATE PROCEDURE retrain_small() LANGUAGE plpgsql AS $$
      BEGIN CALL ml_train('from_proc', ${SMALL}); END $$`);
    await t.pool.query(`CREATE PROCEDURE outer_pipeline() LANGUAGE plpgsql AS $$ BEGIN CALL retrain_small(); END $$`);
    await t.pool.query('CALL outer_pipeline()');
    const r = await t.pool.query(`SELECT model_name, state FROM ml_models WHERE model_name IN ('from_do', 'from_proc') ORDER BY 1`);
    expect(r.rows).toEqual([
      { model_name: 'from_do', state: 'ready' },
      { model_name: 'from_proc', state: 'ready' },
    ]);
  });

  it('inside a transaction block it fails and leaves no request behind', async () => {
    const c = await t.pool.connect();
    try {
      await c.query('BEGIN');
      await expect(c.query(`CALL ml_train('in_block', ${SMALL})`)).rejects.toThrow(/invalid transaction termination/);
      await c.query('ROLLBACK');
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      c.release();
    }
    expect(await jobsOf('in_block')).toBe(0);
  });
});

describe('the pipeline of docs/tutorial-pipeline.md', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'tutorial-pipeline.md'), 'utf8');
  const blocks = [...doc.matchAll(/```sql run\n([\s\S]*?)```/g)].map((m) => m[1]!);

  async function segments() {
    const r = await t.pool.query(`SELECT count(*)::int AS n, count(DISTINCT customer_id)::int AS customers,
        count(DISTINCT segment)::int AS segments, array_agg(DISTINCT model_version) AS versions FROM customer_segments`);
    return r.rows[0];
  }

  it('defines the tables and the procedure', async () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    await t.pool.query(blocks[0]!); // the two tables
    await t.pool.query(blocks[1]!); // the procedure
  });

  it('run twice: a new version each run, every customer scored once by the newest', async () => {
    const customers = (await t.pool.query(`SELECT count(DISTINCT customer_id)::int AS n FROM demo.orders`)).rows[0].n;
    expect(customers).toBe(793);
    await t.pool.query('CALL refresh_customer_segments()');
    expect(await segments()).toEqual({ n: customers, customers, segments: 4, versions: [1] });
    await t.pool.query('CALL refresh_customer_segments()');
    expect(await segments()).toEqual({ n: customers, customers, segments: 4, versions: [2] });
    // The stored segment is version 2's: scoring with the pinned version agrees row by row.
    const disagree = await t.pool.query(`SELECT count(*)::int AS n FROM customer_segments s
        JOIN ml_predict('behaviour_segments@2', 'SELECT * FROM customer_behaviour') p ON p.input->>'customer_id' = s.customer_id
       WHERE p.centroid_id <> s.segment`);
    expect(disagree.rows[0].n).toBe(0);
  });

  it('when training fails, the CALL raises the job error and the last scores stay', async () => {
    await t.pool.query(`UPDATE demo.orders SET discount = 'NaN' WHERE row_id = 1`);
    await expect(t.pool.query('CALL refresh_customer_segments()')).rejects.toThrow(/job \d+ failed: .*avg_discount/);
    expect(await segments()).toMatchObject({ n: 793, versions: [2] });
  });

  it('ml_drop_model drops one version by name@N, and keeps the one that serves the scoring functions', async () => {
    const versions = async () =>
      (await t.pool.query(`SELECT array_agg(version ORDER BY version) AS v FROM ml_models WHERE model_name = 'behaviour_segments'`)).rows[0].v;
    expect(await versions()).toEqual([1, 2, 3]);
    await expect(t.pool.query(`SELECT ml_drop_model('behaviour_segments@9')`)).rejects.toThrow(
      'model "behaviour_segments" has no version 9 (its versions: 1, 2, 3)',
    );
    await expect(t.pool.query(`SELECT ml_drop_model('behaviour_segments@2')`)).rejects.toThrow(
      'version 2 of model "behaviour_segments" serves its scoring functions and stays while other versions exist',
    );
    expect((await t.pool.query(`SELECT ml_drop_model('behaviour_segments@1') AS n`)).rows[0].n).toBe(1);
    expect((await t.pool.query(`SELECT ml_drop_model('behaviour_segments@3') AS n`)).rows[0].n).toBe(1);
    expect(await versions()).toEqual([2]);
    await expect(t.pool.query(`SELECT * FROM ml_predict('behaviour_segments@1', 'SELECT * FROM customer_behaviour')`)).rejects.toThrow(/does not exist/);
    const scored = await t.pool.query(`SELECT count(*)::int AS n FROM ml_predict('behaviour_segments', 'SELECT * FROM customer_behaviour')`);
    expect(scored.rows[0].n).toBe(793);
    // The last version left: name@N drops the model.
    expect((await t.pool.query(`SELECT ml_drop_model('behaviour_segments@2') AS n`)).rows[0].n).toBe(1);
    expect(await versions()).toBeNull();
  });
});
