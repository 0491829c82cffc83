import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';

// Worker threads run plain JavaScript: a thread's TypeScript entry is bundled once per process
// with esbuild (already here for tsx). Loading tsx in every thread instead cost ~70 MB and
// ~0.3 s per thread (1M x 8, `npm run bench`: sidecar peak RSS 432 MB with tsx threads, 392 MB
// bundled).
const bundles = new Map<string, URL>();

export function bundledEntry(source: URL): URL {
  const path = fileURLToPath(source);
  let entry = bundles.get(path);
  if (entry) return entry;
  const out = join(mkdtempSync(join(tmpdir(), 'sqlml-thread-')), 'thread.mjs');
  buildSync({ entryPoints: [path], bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: out, logLevel: 'silent' });
  entry = pathToFileURL(out);
  bundles.set(path, entry);
  return entry;
}
