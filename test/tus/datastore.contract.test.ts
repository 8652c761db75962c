/**
 * Freight's two tus data stores held to the DataStore contract: the S3 store on the test S3 gateway with the
 * upload-state service on the test PostgreSQL, and the embedded file store with the service on PGlite.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DataStore, Upload } from '@tus/utils';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config/index.js';
import { openPglite, openPostgres, type Database } from '../../src/db/client.js';
import { UploadRepository } from '../../src/db/repository.js';
import { createTusStore } from '../../src/tus/store.js';
import { UploadService } from '../../src/uploads/service.js';
import { createTestBucket, serviceEnv, testS3Client } from '../helpers/harness.js';
import { UPLOAD_EXPIRY_MS, dataStoreContract, type ContractOptions, type StoreUnderTest } from './datastore.contract.js';

/** The store under test, as the app builds it: point this at a new store to hold it to the contract. */
const buildStore = (config: Config, uploads: UploadService): DataStore => createTusStore(config, uploads);

/** The row onUploadCreate (src/tus/server.ts) inserts for a tus POST. */
function registerWith(uploads: UploadService) {
  return async (upload: Upload): Promise<void> => {
    await uploads.create({
      id: upload.id,
      userId: 'store-contract',
      protocol: 'tus',
      filename: upload.metadata?.filename ?? null,
      mimeType: upload.metadata?.filetype ?? null,
      totalSize: upload.size ?? null,
      storageKey: upload.id,
      metadata: upload.metadata ?? null,
      storedOffset: 0,
    });
  };
}

/** Config from `env` (loadConfig allows no expiry under a minute; the expiration cases need a short one). */
const configFor = (env: Record<string, string | undefined>): Config => ({
  ...loadConfig(env),
  uploadExpiryMs: UPLOAD_EXPIRY_MS,
});

async function storeOver(config: Config, database: Database, cleanup: () => Promise<void>): Promise<StoreUnderTest> {
  const uploads = new UploadService(new UploadRepository(database.db), { expiryMs: config.uploadExpiryMs });
  return {
    store: buildStore(config, uploads),
    register: registerWith(uploads),
    teardown: async () => {
      await database.close();
      await cleanup();
    },
  };
}

/**
 * Defects of RecordingStore, the wrapper around both stores. The HTTP path hides the first two (every request
 * naming an upload first checks its row: 404 when missing, 410 once aborted or expired); nothing in Freight calls
 * deleteExpired yet, so the third is latent.
 */
const recordingStoreDefects: ContractOptions['knownDefects'] = {
  'a removed upload is gone':
    'RecordingStore.getUpload answers from the row (its stored offset) although the row is aborted and storage removed the upload',
  'removing an upload that was never created rejects with 404':
    'RecordingStore.remove marks the row aborted first, and with no row that is a 409 ("the upload is missing and cannot be aborted")',
  'an unfinished upload past its expiry is gone after deleteExpired':
    'RecordingStore.deleteExpired leaves the rows as they were, and getUpload answers from the row',
};

const tempDataDir = () => mkdtemp(path.join(os.tmpdir(), 'freight-store-contract-'));

dataStoreContract('S3 store (Ceph RGW) and PostgreSQL', async () => {
  const s3 = testS3Client();
  const bucket = await createTestBucket(s3, 'freight-store-contract');
  const dataDir = await tempDataDir();
  // 5 MiB parts (S3's minimum): the contract's 12 MiB uploads are written as several parts.
  const config = configFor({ ...serviceEnv(bucket.bucket, { S3_PART_SIZE: '5MiB' }), DATA_DIR: dataDir });
  return storeOver(config, await openPostgres(inject('databaseUrl')), async () => {
    await bucket.drop();
    s3.destroy();
    await rm(dataDir, { recursive: true, force: true });
  });
}, {
  knownDefects: {
    ...recordingStoreDefects,
    // Seen end to end: POST /files with Upload-Length: 0 and Content-Type: application/offset+octet-stream → 503.
    'the empty body of a zero-byte upload is written':
      'FreightS3Store.create assembles a zero-byte upload at once, so the empty write @tus/server makes next finds no multipart upload (NoSuchKey)',
  },
});

dataStoreContract('file store and PGlite (embedded defaults)', async () => {
  const dataDir = await tempDataDir();
  const config = configFor({ DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
  return storeOver(config, await openPglite('memory://'), () => rm(dataDir, { recursive: true, force: true }));
}, {
  knownDefects: {
    ...recordingStoreDefects,
    'a finished upload outlives its expiry':
      "@tus/file-store's deleteExpired compares the size with the offset in its .json, which stays 0, so it deletes finished uploads too",
  },
});
