import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, freshDatabase, rows, type TestDb } from './helpers.ts';

// Streaming k-means (option batch_size): trained on a sample, moved by mini-batches over every
// row, measured on every row. 150,000 rows: more than the 100,000-row sample, so the streaming
// passes run.

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('streaming');
  await t.worker();
  await t.pool.query(`SELECT setseed(0.25)`);
  await t.pool.query(`
    CREATE TABLE points AS
    SELECT i AS id, (i % 5) * 4 + random() AS a, (i % 5) * -3 + random() AS b, ((i % 5) * 7) % 11 + random() AS c,
           (ARRAY['x', 'y', 'z'])[1 + (i % 5) % 3] AS tag
      FROM generate_series(1, 150000) i`);
});
afterAll(async () => {
  await t.close();
});

describe('streaming k-means (batch_size)', () => {
  it('reads every row in batches, reports metrics over all of them, and matches full-batch training', async () => {
    const opts = { num_clusters: 5, exclude: ['id'], seed: 7, stability_runs: 0 };
    await t.pool.query(`CALL ml_train('full', 'kmeans', 'SELECT * FROM points', $1)`, [JSON.stringify(opts)]);
    await t.pool.query(`CALL ml_train('streamed', 'kmeans', 'SELECT * FROM points', $1)`, [JSON.stringify({ ...opts, batch_size: 4000 })]);
    const [m] = await rows<{ metrics: Record<string, number> }>(t.pool, `SELECT metrics FROM ml_models WHERE model_name = 'streamed'`);
    expect(m!.metrics.rows).toBe(150000);
    expect(m!.metrics.streamed_rows).toBe(150000);
    expect(m!.metrics.sample_rows).toBeGreaterThan(90000);
    expect(m!.metrics.sample_rows).toBeLessThan(110000);
    expect(m!.metrics.batch_size).toBe(4000);
    // The objective over every row, against ml_evaluate's own SQL computation on the same rows.
    const [sql] = await rows<{ msd: number }>(t.pool, `SELECT mean_squared_distance AS msd FROM ml_evaluate('streamed', 'SELECT * FROM points')`);
    expect(Math.abs(m!.metrics.mean_squared_distance - sql!.msd) / sql!.msd).toBeLessThan(1e-9);
    // Within 2% of the model that held every row in memory.
    const [full] = await rows<{ msd: number }>(t.pool, `SELECT mean_squared_distance AS msd FROM ml_evaluate('full')`);
    expect(m!.metrics.mean_squared_distance).toBeLessThan(full!.msd * 1.02);
    // The generated function scores with the streamed centroids: same segments as ml_predict.
    const [agree] = await rows<{ n: string }>(
      t.pool,
      `SELECT count(*) AS n FROM ml_predict('streamed', 'SELECT * FROM points') p WHERE p.centroid_id = streamed_predict((p.input->>'a')::float8, (p.input->>'b')::float8, (p.input->>'c')::float8, p.input->>'tag')`,
    );
    expect(Number(agree!.n)).toBe(150000);
  });

  it('refuses what streaming cannot do, naming the option', async () => {
    const sweep = await errorOf(t.pool, `SELECT ml_create_model('s1', 'kmeans', 'SELECT * FROM points', '{"batch_size": 5000, "num_clusters": [2, 6]}')`);
    expect(sweep.message).toMatch(/"batch_size" \(streaming\) trains one k/);
    const small = await errorOf(t.pool, `SELECT ml_create_model('s2', 'kmeans', 'SELECT * FROM points', '{"batch_size": 10}')`);
    expect(small.message).toMatch(/option "batch_size" must be an integer between 1000 and 10000000 \(got "10"\)/);
    const out = await errorOf(t.pool, `SELECT ml_create_model('s3', 'kmeans', 'SELECT * FROM points', '{"batch_size": 5000, "output_table": "seg"}')`);
    expect(out.message).toMatch(/option "output_table" cannot be combined with "batch_size"/);
  });

  it('fails the job with the column named when a streamed row holds NaN', async () => {
    await t.pool.query(`CREATE TABLE points_nan AS SELECT * FROM points`);
    await t.pool.query(`UPDATE points_nan SET a = 'NaN' WHERE id = 149999`);
    const [job] = await rows<{ id: string }>(t.pool, `SELECT ml_create_model('nan', 'kmeans', 'SELECT * FROM points_nan ORDER BY id', '{"batch_size": 5000, "exclude": ["id"], "num_clusters": 5, "seed": 7, "stability_runs": 0}') AS id`);
    const err = await errorOf(t.pool, `SELECT ml_wait($1)`, [job!.id]);
    expect(err.message).toMatch(/column "a"/);
  });
});
