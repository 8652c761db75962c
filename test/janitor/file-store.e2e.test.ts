/**
 * The janitor on the embedded defaults (PGlite, the local file store): a stale tus upload is expired and its file
 * removed, and two runs in the one process PGlite allows never overlap.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Upload } from '@tus/utils';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadConfig, type Config } from '../../src/config/index.js';
import { openPglite, type Database } from '../../src/db/client.js';
import { UploadRepository } from '../../src/db/repository.js';
import { janitorDeps } from '../../src/janitor/wiring.js';
import { runJanitor } from '../../src/janitor/janitor.js';
import { webhookOutbox } from '../../src/db/schema.js';
import { createTusStore } from '../../src/tus/store.js';
import { UploadService } from '../../src/uploads/service.js';
import { silentLogger } from '../helpers/harness.js';

let dataDir: string;
let config: Config;
let database: Database;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'freight-janitor-files-'));
  config = loadConfig({ DATA_DIR: dataDir });
  database = await openPglite('memory://');
});
afterAll(async () => {
  await database?.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** The service and store as the server builds them, with a clock `shiftMs` away. */
function parts(shiftMs = 0) {
  const log = silentLogger();
  const uploads = new UploadService(new UploadRepository(database.db), {
    expiryMs: config.uploadExpiryMs,
    now: () => new Date(Date.now() + shiftMs),
  });
  const tusStore = createTusStore({ config, uploads, log, tempDir: config.tempDir });
  return { uploads, tusStore, deps: janitorDeps({ config, database, uploads, tusStore, s3: undefined, log }) };
}

/** An upload created (row and file) `ageMs` ago. */
async function uploadCreatedAgo(ageMs: number): Promise<string> {
  const { uploads, tusStore } = parts(-ageMs);
  const id = randomUUID();
  await uploads.states.create({
    id,
    userId: 'files',
    protocol: 'tus',
    filename: 'a.bin',
    mimeType: null,
    totalSize: 10,
    storageKey: id,
    storedOffset: 0,
  });
  await tusStore.create(new Upload({ id, size: 10, offset: 0 }));
  return id;
}

const fileOf = (id: string) => path.join(dataDir, 'files', id);

test('a stale tus upload is expired and its file removed; a fresh one is kept', async () => {
  const stale = await uploadCreatedAgo(config.uploadExpiryMs + 60_000);
  const fresh = await uploadCreatedAgo(1_000);
  expect([existsSync(fileOf(stale)), existsSync(fileOf(fresh))]).toEqual([true, true]);

  const report = await runJanitor(parts().deps);
  expect(report).toMatchObject({
    ran: true,
    expired: { tus: 1, direct: 0 },
    orphanMultipartUploadsAborted: 0,
    failures: 0,
  });
  expect(report.actions).toEqual([{ kind: 'expire-upload', uploadId: stale, protocol: 'tus' }]);
  expect([existsSync(fileOf(stale)), existsSync(fileOf(fresh))]).toEqual([false, true]);
  expect((await parts().uploads.access.findForStorage(stale))?.status).toBe('expired');
});

test('two runs at once in one process: one runs, the other does nothing', async () => {
  await uploadCreatedAgo(config.uploadExpiryMs + 60_000);
  const { deps } = parts();
  const reports = await Promise.all([runJanitor(deps), runJanitor(deps)]);
  expect(reports.map((report) => report.ran).sort()).toEqual([false, true]);
  expect(reports.find((report) => report.ran)?.expired.tus).toBe(1);
});

test('delivered webhook events are pruned after a week (a dry run only counts them); undelivered ones are kept', async () => {
  const day = 86_400_000;
  const event = (deliveredAgo: number | null) => ({
    event: 'upload.created' as const,
    uploadId: randomUUID(),
    payload: {},
    deliveredAt: deliveredAgo === null ? null : new Date(Date.now() - deliveredAgo),
  });
  await database.db.insert(webhookOutbox).values([event(8 * day), event(8 * day), event(day), event(null)]);
  const { deps } = parts();
  expect((await runJanitor(deps, { dryRun: true })).webhookEventsPruned).toBe(2);
  const report = await runJanitor(deps);
  expect(report.webhookEventsPruned).toBe(2);
  expect(report.actions).toContainEqual({ kind: 'prune-webhook-events', events: 2 });
  expect(await database.db.$count(webhookOutbox)).toBe(2);
});
