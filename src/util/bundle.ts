import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

// Worker threads run plain JavaScript: a thread's TypeScript entry is bundled once per process
// with esbuild (already here for tsx): loading tsx in every thread instead cost memory and start
// time per thread (docs/performance-log.md). The bundle is handed to the thread as a data: URL,
// so nothing is written to disk (files in a temporary folder outlived every killed process).
const bundles = new Map<string, URL>();

export function bundledEntry(source: URL): URL {
  const path = fileURLToPath(source);
  let entry = bundles.get(path);
  if (entry) return entry;
  const out = buildSync({ entryPoints: [path], bundle: true, format: 'esm', platform: 'node', target: 'node20', write: false, logLevel: 'silent' });
  entry = new URL(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0]!.contents).toString('base64')}`);
  bundles.set(path, entry);
  return entry;
}
