import { defineConfig } from 'vitest/config';

/**
 * Two projects, one `npm test`:
 * - unit: `test/**\/*.test.ts` but not `*.e2e.test.ts`. No services at all (no PostgreSQL, no S3 gateway, no
 *   Chromium, no dist/ build): the code under test in-process, with fakes and injected clocks. Seconds.
 *   `npm run test:unit` runs it alone.
 * - e2e: `test/**\/*.e2e.test.ts`. Real PostgreSQL, the real S3 gateway, Chromium, Freight and its CLI as
 *   processes: test/global-setup.ts brings them up (only when an e2e file runs), and test/e2e-setup.ts gives
 *   every file a database of its own. `npm run test:e2e` runs it alone.
 */
export default defineConfig({
  test: {
    pool: 'forks',
    // The pinned AWS SDK runs on Node 20; its notice about future releases is noise here.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    // Two cores here; the end-to-end files each move tens of MiB through the server and the gateway.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.e2e.test.ts'],
          // Nothing here waits on a service: a test that takes longer than this hangs.
          testTimeout: 10_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/**/*.e2e.test.ts'],
          // Starts (and afterwards stops) PostgreSQL and the S3 gateway when the environment does not name them.
          globalSetup: ['test/global-setup.ts'],
          // A database of its own for every file (a copy of the migrated template global-setup.ts made).
          setupFiles: ['test/e2e-setup.ts'],
          // A bound on a hang, not a wait: the slowest e2e test takes about 20 s on a loaded machine.
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
