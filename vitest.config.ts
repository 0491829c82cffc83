import { defineConfig } from 'vitest/config';

// Four projects: `unit` needs no database (npm run test:unit, seconds); `db` runs against one
// real PostgreSQL (test/setup/postgres.ts); `faults` kills sidecars and restarts PostgreSQL,
// and waits for leases (about a minute); `timing` measures the sidecar's event-loop stalls in
// wall-clock time, so it runs after the others, alone on the machine (a busy machine stretches
// every synchronous stretch of a job: the auto job's 139 ms alone became 932 ms beside the other tests).
// npm test runs all four.
const UNIT = ['clv-models', 'copy-binary', 'features', 'hdbscan-tree', 'kmeans', 'layers', 'linear', 'shap', 'sort', 'trees'].map((f) => `test/${f}.test.ts`);
const FAULTS = ['reliability', 'restart'].map((f) => `test/${f}.test.ts`);
const TIMING = ['stalls'].map((f) => `test/${f}.test.ts`);
const shared = {
  testTimeout: 120_000,
  hookTimeout: 180_000,
  pool: 'forks' as const,
  env: { SQLML_LOG_LEVEL: 'error' },
};

export default defineConfig({
  test:
    process.env.SQLML_FIXTURES === '1'
      ? // test/fixtures holds test files that other tests run on purpose (exit-code.test.ts).
        { ...shared, globalSetup: ['./test/setup/postgres.ts'], include: ['test/fixtures/*.spec.ts'] }
      : {
          ...shared,
          projects: [
            { extends: true, test: { name: 'unit', include: UNIT } },
            { extends: true, test: { name: 'db', include: ['test/**/*.test.ts'], exclude: [...UNIT, ...FAULTS, ...TIMING], globalSetup: ['./test/setup/postgres.ts'] } },
            { extends: true, test: { name: 'faults', include: FAULTS, globalSetup: ['./test/setup/postgres.ts'] } },
            { extends: true, test: { name: 'timing', include: TIMING, globalSetup: ['./test/setup/postgres.ts'], sequence: { groupOrder: 1 } } },
          ],
        },
});
