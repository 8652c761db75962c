/**
 * Brings up what `npm test` needs unless the environment names it (see scripts/services.ts): PostgreSQL in a
 * database of its own, an S3 server (a Ceph RGW on free ports), and Debian's Chromium (installed if missing).
 * Builds dist/ for the tests that start the server (or the CLI) as a process, and the upload page (dist/web).
 * Whatever it starts, it stops.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import {
  ensureChromium,
  ensurePostgres,
  ensureS3,
  repoRoot,
  runCleanups,
  type Cleanup,
  type S3Settings,
} from '../scripts/services.js';

const run = promisify(execFile);

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    s3: S3Settings;
    /** Debian's Chromium, for the browser tests. */
    chromium: string;
  }
}

export default async function setup(project: TestProject) {
  const cleanups: Cleanup[] = [];
  try {
    const [databaseUrl, s3] = await Promise.all([
      ensurePostgres(cleanups, `freight_test_${process.pid}`),
      ensureS3(cleanups, 'freight-test-rgw'),
      run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repoRoot() }),
      // The upload page, served from dist/web by every Freight the tests start.
      run('npx', ['vite', 'build', '--config', 'web/vite.config.ts'], { cwd: repoRoot() }),
    ]);
    // After the gateway: both may install Debian packages, and apt takes one installer at a time.
    const chromium = await ensureChromium();
    project.provide('databaseUrl', databaseUrl);
    project.provide('s3', s3);
    project.provide('chromium', chromium);
  } catch (error) {
    await runCleanups(cleanups);
    throw error;
  }
  return () => runCleanups(cleanups);
}
