// HDBSCAN against R's dbscan::hdbscan (when Debian's r-cran-dbscan is installed), on Gaussian
// blobs plus uniform noise: agreement (adjusted Rand index, noise counted as a label) and time,
// both measured in the same run. With --scale, also 100,000 x 8 (ours only): time and peak RSS.
//   npx tsx bench/hdbscan-vs-r.ts [--scale]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adjustedRandIndex } from '../src/metrics/ari.ts';
import { trainHdbscan } from '../src/models/hdbscan/train.ts';
import { Random } from '../src/util/random.ts';

function data(seed: number, n: number, d: number): Float64Array {
  const rng = new Random(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const X = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = i % 5;
    for (let j = 0; j < d; j++) X[i * d + j] = i < n * 0.9 ? ((c * 7 + j * 3) % 11) * 3 + gauss() * (0.5 + c * 0.3) : (rng.next() - 0.5) * 40;
  }
  return X;
}

function hasR(): boolean {
  try {
    execFileSync('Rscript', ['-e', 'suppressMessages(library(dbscan))'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'sqlml-bench-'));
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
const r = hasR();
console.log(`HDBSCAN vs R dbscan::hdbscan ${r ? '' : '(R not installed: skipped)'}`);
console.log('rows x dims | minPts | ours s | R s | ratio | ARI | clusters ours/R | noise ours/R');
for (const [seed, n, d, minPts] of [[1, 2000, 2, 20], [2, 3000, 3, 15], [3, 1000, 5, 10], [4, 10000, 5, 50], [5, 10000, 5, 5]] as const) {
  const X = data(seed, n, d);
  const t0 = performance.now();
  const m = await trainHdbscan(X, n, d, { minClusterSize: minPts, minSamples: minPts, method: 'eom', epsilon: 0, distance: 'euclidean' });
  const ours = (performance.now() - t0) / 1000;
  const o = Int32Array.from(m.labels, (v) => v + 1);
  if (!r) {
    console.log(`${n} x ${d} | ${minPts} | ${ours.toFixed(2)} | skipped`);
    continue;
  }
  const csv = join(dir, `x${seed}.csv`);
  writeFileSync(csv, Array.from({ length: n }, (_, i) => Array.from(X.subarray(i * d, i * d + d)).join(',')).join('\n') + '\n');
  const out = execFileSync('Rscript', ['-e', `suppressMessages(library(dbscan)); x <- as.matrix(read.csv('${csv}', header=FALSE)); t <- system.time(h <- hdbscan(x, minPts=${minPts})); cat(t[3], '\\n'); cat(h$cluster, sep='\\n')`])
    .toString()
    .trim()
    .split('\n');
  const rTime = Number(out[0]);
  const rl = Int32Array.from(out.slice(1).map(Number));
  const noise = (a: Int32Array) => a.filter((v) => v === 0).length;
  console.log(
    `${n} x ${d} | ${minPts} | ${ours.toFixed(2)} | ${rTime.toFixed(2)} | ${(ours / rTime).toFixed(2)} | ${adjustedRandIndex(o, rl).toFixed(4)} | ${m.k}/${Math.max(...rl)} | ${noise(o)}/${noise(rl)}`,
  );
}
if (process.argv.includes('--scale')) {
  const n = 100_000;
  const d = 8;
  const X = data(6, n, d);
  const t0 = performance.now();
  const m = await trainHdbscan(X, n, d, { minClusterSize: 1000, minSamples: 50, method: 'eom', epsilon: 0, distance: 'euclidean' });
  console.log(`scale: 100,000 x 8, min_cluster_size 1000, min_samples 50: ${((performance.now() - t0) / 1000).toFixed(1)} s, ${m.k} clusters, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
}
