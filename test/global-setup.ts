/**
 * The e2e project's set-up (vitest.config.ts; the unit project needs none of it). Brings up what the e2e tests need
 * unless the environment names it (see scripts/services.ts): PostgreSQL with a database of the run, migrated, that
 * every e2e file copies into a database of its own (test/e2e-setup.ts), an S3 server (a Ceph RGW on free ports),
 * and the Debian packages the tests drive: Chromium and docker-compose (installed if missing). Builds dist/ for the
 * tests that start the server (or the CLI) as a process, and the upload page (dist/web). Whatever it starts, it
 * stops.
 */
import { execFile } from 'node:child_process';
import postgres from 'postgres';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { openPostgres } from '../src/db/client.js';
import {
  ensureDebianPackages,
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
    /** The run's migrated database: e2e-setup.ts copies it for each file (never connect to it: it is the template). */
    templateDatabaseUrl: string;
    s3: S3Settings;
    /** Debian's Chromium, for the browser tests. */
    chromium: string;
  }
}

export default async function setup(project: TestProject) {
  const cleanups: Cleanup[] = [];
  try {
    const [databaseUrl, s3] = await Promise.all([
      ensurePostgres(cleanups, `freight_test_${process.pid}`).then(migrated),
      ensureS3(cleanups, 'freight-test-rgw'),
      run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repoRoot() }),
      // The upload page, served from dist/web by every Freight the tests start.
      run('npx', ['vite', 'build', '--config', 'web/vite.config.ts'], { cwd: repoRoot() }),
    ]);
    // Run first at the end: the files' own databases that a crashed worker could not drop.
    cleanups.push(() => dropFileDatabases(databaseUrl));
    // After the gateway: both may install Debian packages, and apt takes one installer at a time.
    const chromium = await ensureChromium();
    // test/docker-compose.e2e.test.ts validates docker-compose.yml with it (no Docker engine needed).
    await ensureDebianPackages({ 'docker-compose': 'docker-compose' });
    project.provide('templateDatabaseUrl', databaseUrl);
    project.provide('s3', s3);
    project.provide('chromium', chromium);
  } catch (error) {
    await runCleanups(cleanups);
    throw error;
  }
  return () => runCleanups(cleanups);
}

/** Drops what is left of the databases test/e2e-setup.ts made from the template (named `<template>_<8 hex>`). */
async function dropFileDatabases(templateUrl: string): Promise<void> {
  const admin = new URL(templateUrl);
  const template = decodeURIComponent(admin.pathname.slice(1));
  admin.pathname = '/postgres';
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {} });
  try {
    const left = await sql<
      { datname: string }[]
    >`select datname from pg_database where datname like ${`${template}_%`}`;
    for (const { datname } of left) {
      if (new RegExp(`^${template}_[0-9a-f]{8}$`).test(datname)) {
        await sql.unsafe(`drop database if exists "${datname}" with (force)`);
      }
    }
  } finally {
    await sql.end();
  }
}

/** Applies the migrations once, so that each file's copy starts migrated; closes every connection to it. */
async function migrated(url: string): Promise<string> {
  const database = await openPostgres(url);
  await database.close();
  return url;
}
