import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDb } from './helpers.ts';

// Progress a user can watch: ml_jobs.progress kept current during training (not only at the
// 10 s heartbeats), and ml_wait / CALL ml_train reporting it as NOTICEs.

let t: TestDb;
beforeAll(async () => {
  t = await freshDatabase('progress');
  await t.worker();
  await t.pool.query(`SELECT setseed(0.3)`);
  await t.pool.query(`CREATE TABLE points AS SELECT random() AS a, random() AS b, random() AS c, random() AS d
                        FROM generate_series(1, 300000)`);
  await t.pool.query('ANALYZE points');
});
afterAll(async () => t?.close());

// Uniform data converges slowly: many iterations, several seconds of training.
const SLOW = `'kmeans', 'SELECT * FROM points', '{"num_clusters": 16, "n_init": 24, "seed": 1, "stability_runs": 0}'`;

describe('progress', () => {
  it('ml_jobs.progress changes every second or so while a job trains', async () => {
    const job = (await t.pool.query(`SELECT ml_create_model('slow', ${SLOW}) AS id`)).rows[0].id;
    const seen: { status: string; progress: Record<string, unknown> | null }[] = [];
    for (;;) {
      const r = await t.pool.query(`SELECT status, progress FROM ml_jobs WHERE id = $1`, [job]);
      const row = r.rows[0];
      const last = seen[seen.length - 1];
      if (!last || JSON.stringify(last) !== JSON.stringify(row)) seen.push(row);
      if (['ready', 'failed', 'cancelled'].includes(row.status)) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(seen[seen.length - 1]!.status).toBe('ready');
    const training = seen.filter((s) => s.status === 'training');
    const phases = new Set(training.map((s) => s.progress?.phase));
    expect([...phases]).toEqual(expect.arrayContaining(['load', 'train']));
    const iterations = training.filter((s) => s.progress?.phase === 'train');
    expect(iterations.length, JSON.stringify(seen)).toBeGreaterThanOrEqual(3);
    expect(iterations.every((s) => typeof s.progress?.iteration === 'number' && typeof s.progress?.loss === 'number')).toBe(true);
    const load = training.find((s) => s.progress?.phase === 'load');
    expect(load!.progress!.rows_expected).toBeGreaterThan(250000);
  });

  it('CALL ml_train reports each phase as a NOTICE, and client_min_messages = warning silences it', async () => {
    const c = await t.pool.connect();
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      await c.query(`CALL ml_train('slow2', ${SLOW})`);
      expect(notices.length, notices.join('\n')).toBeGreaterThanOrEqual(2);
      expect(notices.every((n) => /^job \d+ \(slow2\) (queued|training)/.test(n)), notices.join('\n')).toBe(true);
      expect(notices.some((n) => /^job \d+ \(slow2\) training: train, trial 1, k 16, run \d+, of 24, .*iteration \d+.*loss [0-9.]+.*, [0-9.]+ s$/.test(n)), notices.join('\n')).toBe(true);
      notices.length = 0;
      await c.query('SET client_min_messages = warning');
      await c.query(`CALL ml_train('slow3', 'kmeans', 'SELECT a, b FROM points LIMIT 1000', '{"num_clusters": 2}')`);
      expect(notices).toEqual([]);
    } finally {
      await c.query('RESET client_min_messages');
      c.release();
    }
  });
});
