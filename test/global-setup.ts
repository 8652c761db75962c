/**
 * Brings up what `npm test` needs unless the environment names it (see scripts/services.ts): PostgreSQL in a
 * database of its own, and an S3 server (a Ceph RGW on free ports). Builds dist/ for the tests that start the
 * server as a process. Whatever it starts, it stops.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { ensurePostgres, ensureS3, repoRoot, runCleanups, type Cleanup, type S3Settings } from '../scripts/services.js';

const run = promisify(execFile);

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    s3: S3Settings;
  }
}

export default async function setup(project: TestProject) {
  const cleanups: Cleanup[] = [];
  try {
    const [databaseUrl, s3] = await Promise.all([
      ensurePostgres(cleanups, `freight_test_${process.pid}`),
      ensureS3(cleanups, 'freight-test-rgw'),
      run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repoRoot() }),
    ]);
    project.provide('databaseUrl', databaseUrl);
    project.provide('s3', s3);
  } catch (error) {
    await runCleanups(cleanups);
    throw error;
  }
  return () => runCleanups(cleanups);
}
