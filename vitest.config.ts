import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['./test/setup/postgres.ts'],
    // test/fixtures holds test files that other tests run on purpose (SQLML_FIXTURES=1).
    include: process.env.SQLML_FIXTURES === '1' ? ['test/fixtures/*.spec.ts'] : ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    env: { SQLML_LOG_LEVEL: 'error' },
  },
});
