import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';

// Worker threads run plain JavaScript: a thread's TypeScript entry is bundled once per process
// with esbuild (already here for tsx): loading tsx in every thread instead cost memory and start
// time per thread (docs/performance-log.md). The bundles live in one folder per process, removed
// when the process exits.
const bundles = new Map<string, URL>();
let folder: string | null = null;

export function bundledEntry(source: URL): URL {
  const path = fileURLToPath(source);
  let entry = bundles.get(path);
  if (entry) return entry;
  if (!folder) {
    const dir = mkdtempSync(join(tmpdir(), 'sqlml-thread-'));
    folder = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const out = join(folder, `thread-${bundles.size}.mjs`);
  buildSync({ entryPoints: [path], bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: out, logLevel: 'silent' });
  entry = pathToFileURL(out);
  bundles.set(path, entry);
  return entry;
}
