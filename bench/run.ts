// npm run bench: every benchmark, each printed with its baseline measured in the same run.
//   npm run bench -- --quick      small sizes (what the test suite's smoke run does)
//   npm run bench -- --hdbscan    HDBSCAN's curve and goals only (add --goals: the goals only, ~5 min)
//   npm run bench -- --in-database   in-database k-means on partitioned tables only (10M rows)
import { benchDatabase } from './lib.ts';
import { benchStreaming, benchTraining, printTraining } from './training.ts';
import { benchScoring, printScoring } from './scoring.ts';
import { benchQueue, printQueue } from './queue.ts';
import { benchSupervised, printSupervised } from './supervised.ts';
import { benchStalls, printStalls } from './stalls.ts';
import { benchExplore, printExplore } from './explore.ts';
import { benchClv, printClv } from './clv.ts';
import { benchInDatabase, printInDatabase } from './in-database.ts';
import { benchHdbscanCurve, benchHdbscanGoals, printHdbscanCurve, printHdbscanGoals } from './hdbscan.ts';

const quick = process.argv.includes('--quick');
const db = await benchDatabase();
try {
  console.log(`machine: ${(await import('node:os')).cpus().length} cores, ${Math.round((await import('node:os')).totalmem() / 2 ** 30)} GiB; PostgreSQL ${(await db.pool.query('SHOW server_version')).rows[0].server_version}`);
  if (process.argv.includes('--in-database')) await inDatabase();
  else {
    if (!process.argv.includes('--hdbscan')) await others();
    await hdbscan();
  }
} finally {
  await db.close();
}

async function others(): Promise<void> {
  const full = await benchTraining(db, { rows: quick ? 20_000 : 1_000_000, k: 8 });
  printTraining(full);
  await benchStreaming(db, { rows: quick ? 20_000 : 1_000_000, bigRows: quick ? 40_000 : 10_000_000, fullObjective: full.ourObjective, batchSize: quick ? 2000 : 50_000 });
  printScoring(await benchScoring(db, { rows: quick ? 20_000 : 1_000_000 }));
  printQueue(await benchQueue(db, { jobs: quick ? 20 : 200 }));
  const supervisedRows = quick ? 5000 : 40_000;
  printSupervised(supervisedRows, await benchSupervised(db, { rows: supervisedRows }));
  printExplore(await benchExplore(db, { rows: quick ? 20_000 : 1_000_000 }));
  printClv(await benchClv(db, { customers: quick ? 10_000 : 1_000_000 }));
  printStalls(await benchStalls(db, { rows: quick ? 5000 : 300_000, densityRows: quick ? 2000 : 40_000 }));
  if (!quick && process.argv.includes('--curve')) {
    for (const rows of [10_000, 100_000, 1_000_000, 10_000_000]) printTraining(await benchTraining(db, { rows, k: 8 }));
    for (const k of [2, 32, 128]) printTraining(await benchTraining(db, { rows: 1_000_000, k }));
  }
}

async function inDatabase(): Promise<void> {
  const rows = quick ? 200_000 : 10_000_000;
  printInDatabase(await benchInDatabase(db, { rows, partitions: 4, k: 8 }));
  printInDatabase(await benchInDatabase(db, { rows: quick ? rows : 2_000_000, partitions: 2, k: 8, foreign: true }));
}

async function hdbscan(): Promise<void> {
  // HDBSCAN: the O(n^2) baseline up to 30,000 rows (100,000 at 8 dimensions: ~3 minutes each)
  const minSamples = 10;
  if (!process.argv.includes('--goals')) printHdbscanCurve(await benchHdbscanCurve(quick
    ? { sizes: () => [3000], dims: [2, 8], exact: () => true, minSamples }
    : {
        // 10^4 .. 10^6 rows where the tree passes stay within minutes (16 dimensions: 100,000)
        sizes: (d) => [10_000, 30_000, 100_000, 300_000, 1_000_000].filter((n) => n <= (d <= 5 ? 1_000_000 : d <= 8 ? 300_000 : 100_000)),
        dims: [2, 5, 8, 16],
        exact: (n, d) => n <= 30_000 || (d === 8 && n <= 100_000),
        minSamples,
      }), minSamples);
  printHdbscanGoals(await benchHdbscanGoals(db, quick
    ? [{ rows: 20_000, dims: 8, options: { min_samples: 10 } }]
    : [
        { rows: 100_000, dims: 8, options: {} },
        { rows: 100_000, dims: 8, options: { min_samples: 10 } },
        { rows: 1_000_000, dims: 5, options: { min_samples: 10 } },
        { rows: 1_000_000, dims: 5, options: {} }, // min_samples = min_cluster_size = 10,000: ~3.5 min
      ]));
}
