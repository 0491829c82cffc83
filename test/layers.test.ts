import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

// The folders show the flow: sql/ -> queue/ -> jobs/ -> data/ -> features/ -> models/ -> store/.
// The model layer computes (fit -> artifact -> SQL) and never reaches back into jobs or store;
// the store layer writes what the models made and never runs jobs. (Import cycles, type-only
// ones included, are refused by `npm run check` in .ci/run.)

const SRC = join(import.meta.dirname, '..', 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function importsOf(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

function offending(layer: string, forbidden: string[]): string[] {
  return files(join(SRC, layer)).flatMap((f) =>
    importsOf(f)
      .filter((i) => i.startsWith('.'))
      .map((i) => relative(SRC, join(f, '..', i)))
      .filter((target) => forbidden.some((x) => target.startsWith(`${x}/`)))
      .map((target) => `${relative(SRC, f)} -> ${target}`),
  );
}

describe('layers', () => {
  it('src/models imports nothing from src/jobs, src/store or src/queue', () => {
    expect(files(join(SRC, 'models')).length).toBeGreaterThan(20);
    expect(offending('models', ['jobs', 'store', 'queue'])).toEqual([]);
  });
  it('src/store imports nothing from src/jobs', () => {
    expect(offending('store', ['jobs'])).toEqual([]);
  });
});
