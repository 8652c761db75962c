import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Starts (and afterwards stops) PostgreSQL and the S3 gateway when the environment does not name them.
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // The pinned AWS SDK runs on Node 20; its notice about future releases is noise here.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    // Two cores here; the end-to-end files each move tens of MiB through the server and the gateway.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 240_000,
  },
});
