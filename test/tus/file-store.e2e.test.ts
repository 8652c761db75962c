/**
 * The file store of the embedded defaults makes bytes durable before it says they are stored: each PATCH's file is
 * fsynced before the stored offset moves past its bytes, and a new upload's file and directory entry are fsynced
 * before the creation is answered. The order is observed through the store's fsync seam: when the fsync runs, the
 * file already holds the PATCH's bytes and the database still records the old offset; once the PATCH is answered
 * the database records the new one. Were the fsync after the offset's UPDATE (or missing), the first observation
 * would see the new offset (or there would be none).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import { Upload } from '@tus/utils';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { openPglite, type Database } from '../../src/db/client.js';
import { UploadRepository } from '../../src/db/repository.js';
import { RecordedFileStore, fsync } from '../../src/tus/file-store.js';
import { UploadService } from '../../src/uploads/service.js';
import { randomData, silentLogger } from '../helpers/harness.js';

let dir: string;
let database: Database;
let uploads: UploadService;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'freight-file-store-'));
  database = await openPglite('memory://');
  uploads = new UploadService(new UploadRepository(database.db), { expiryMs: 3_600_000 });
});
afterAll(async () => {
  await database?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Synced {
  file: string;
  /** The file's size when it was fsynced (a directory: undefined). */
  size: number | undefined;
  /** The upload's stored offset in the database at that moment. */
  storedOffset: number | null | undefined;
}

/** A file store whose fsyncs are recorded (then done for real), with what the disk and the database said then. */
function watchedStore(id: string) {
  const synced: Synced[] = [];
  const store = new RecordedFileStore(
    new FileStore({ directory: dir }),
    uploads,
    silentLogger(),
    { minRate: 0, windowMs: 30_000 },
    true,
    async (file) => {
      const info = await stat(file);
      const row = await uploads.access.findForStorage(id);
      synced.push({ file, size: info.isDirectory() ? undefined : info.size, storedOffset: row?.storedOffset });
      await fsync(file);
    },
  );
  return { store, synced };
}

async function createUpload(size: number) {
  const id = randomUUID();
  await uploads.states.create({
    id,
    userId: 'durable',
    protocol: 'tus',
    filename: 'a.bin',
    mimeType: null,
    totalSize: size,
    storageKey: id,
    storedOffset: 0,
  });
  return id;
}

test('a PATCH is fsynced before its offset is recorded; the creation fsyncs the file and its directory', async () => {
  const data = randomData(3 * 1024 * 1024);
  const id = await createUpload(data.length);
  const { store, synced } = watchedStore(id);

  await store.create(new Upload({ id, size: data.length, offset: 0 }));
  expect(synced).toEqual([
    { file: path.join(dir, id), size: 0, storedOffset: 0 },
    { file: dir, size: undefined, storedOffset: 0 },
  ]);

  synced.length = 0;
  const first = 2 * 1024 * 1024;
  expect(await store.write(Readable.from([data.subarray(0, first)]), id, 0)).toBe(first);
  // At the fsync the bytes were in the file and the database still said 0; after the write it says `first`.
  expect(synced).toEqual([{ file: path.join(dir, id), size: first, storedOffset: 0 }]);
  expect((await uploads.access.findForStorage(id))?.storedOffset).toBe(first);

  synced.length = 0;
  expect(await store.write(Readable.from([data.subarray(first)]), id, first)).toBe(data.length);
  expect(synced).toEqual([{ file: path.join(dir, id), size: data.length, storedOffset: first }]);
  const done = await uploads.access.findForStorage(id);
  expect(done).toMatchObject({ status: 'completed', storedOffset: data.length });
});

test('an empty PATCH moves nothing and fsyncs nothing', async () => {
  const id = await createUpload(10);
  const { store, synced } = watchedStore(id);
  await store.create(new Upload({ id, size: 10, offset: 0 }));
  synced.length = 0;
  expect(await store.write(Readable.from([]), id, 0)).toBe(0);
  expect(synced).toEqual([]);
});
