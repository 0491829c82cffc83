import { writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { trainHdbscan } from '/work/main/src/models/hdbscan/train.ts';
import { adjustedRandIndex } from '/work/main/src/metrics/ari.ts';
import { Random } from '/work/main/src/util/random.ts';

const rng = new Random(Number(process.argv[2] ?? 1));
const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
const n = Number(process.argv[3] ?? 2000), d = Number(process.argv[4] ?? 2), mcs = Number(process.argv[5] ?? 20);
const X = new Float64Array(n * d);
for (let i = 0; i < n; i++) {
  const c = i % 5;
  for (let j = 0; j < d; j++) X[i * d + j] = i < n * 0.9 ? ((c * 7 + j * 3) % 11) * 3 + gauss() * (0.5 + c * 0.3) : (rng.next() - 0.5) * 40;
}
const rows = Array.from({ length: n }, (_, i) => Array.from(X.subarray(i * d, i * d + d)).join(','));
writeFileSync('/tmp/h.csv', rows.join('\n') + '\n');
let t = performance.now();
const m = await trainHdbscan(X, n, d, { minClusterSize: mcs, minSamples: mcs, method: 'eom', epsilon: 0, distance: 'euclidean' });
const ours = (performance.now() - t) / 1000;
const out = execFileSync('Rscript', ['-e', `suppressMessages(library(dbscan)); x <- as.matrix(read.csv('/tmp/h.csv', header=FALSE)); t <- system.time(h <- hdbscan(x, minPts=${mcs})); cat(t[3], '\\n'); cat(h$cluster, sep='\\n')`]).toString().trim().split('\n');
const rTime = Number(out[0]);
const r = Int32Array.from(out.slice(1).map(Number), (v) => v);
const o = Int32Array.from(m.labels, (v) => v + 1);
console.log({ n, d, mcs, ours_s: ours.toFixed(2), r_s: rTime, ari: adjustedRandIndex(o, r).toFixed(4), ourClusters: m.k, rClusters: Math.max(...r), ourNoise: o.filter((v) => v === 0).length, rNoise: r.filter((v) => v === 0).length });
