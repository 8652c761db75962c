/**
 * Runs before every e2e test file (vitest.config.ts): the file gets a database of its own, a copy of the migrated
 * template test/global-setup.ts made, dropped after the file. A Freight takes up the unfinished work of its
 * database when it starts (final uploads to assemble, events to deliver, the janitor's sweeps): on a database of
 * its own, a file's servers never reach for another file's uploads, and a file never sees another's rows.
 * testDatabaseUrl() (harness.ts) names it.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, inject } from 'vitest';
import { FILE_DATABASE_ENV } from './helpers/file-database.js';

const template = new URL(inject('templateDatabaseUrl'));
const templateName = decodeURIComponent(template.pathname.slice(1));
const name = `${templateName}_${randomUUID().slice(0, 8)}`;
// Not the template itself: nobody may be connected to it while it is copied.
const adminUrl = new URL(template);
adminUrl.pathname = '/postgres';
const admin = postgres(adminUrl.toString(), { max: 1, onnotice: () => {} });
await admin.unsafe(`create database "${name}" template "${templateName}"`);
const url = new URL(template);
url.pathname = `/${name}`;
process.env[FILE_DATABASE_ENV] = url.toString();

afterAll(async () => {
  // with (force): a connection a failed test left open must not keep the database.
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end();
});
