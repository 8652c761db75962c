/**
 * Freight's two tus data stores held to the DataStore contract: the S3 store on the test S3 gateway with the
 * upload-state service on the test PostgreSQL, and the embedded file store with the service on PGlite.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Upload } from '@tus/utils';
import { S3Client } from '@aws-sdk/client-s3';
import { loadConfig, type Config } from '../../src/config/index.js';
import { openPglite, openPostgres, type Database } from '../../src/db/client.js';
import { UploadRepository } from '../../src/db/repository.js';
import { s3ClientConfig, sdkLogger } from '../../src/storage/s3.js';
import { createTusStore } from '../../src/tus/store.js';
import type { FreightStore } from '../../src/tus/upload-record.js';
import { UploadService } from '../../src/uploads/service.js';
import { createTestBucket, serviceEnv, silentLogger, testS3Client } from '../helpers/harness.js';
import { UPLOAD_EXPIRY_MS, dataStoreContract, type StoreUnderTest } from './datastore.contract.js';
import { testDatabaseUrl } from '../helpers/file-database.js';

/** The store under test, as the app builds it (src/app.ts). */
function buildStore(config: Config, uploads: UploadService, tempDir: string): { store: FreightStore; close(): void } {
  const log = silentLogger();
  const logger = sdkLogger(log);
  const s3 = config.s3 && {
    client: new S3Client(s3ClientConfig(config.s3, { logger }, config.s3RequestTimeoutMs)),
    bodyClient: new S3Client(s3ClientConfig(config.s3, { logger, maxAttempts: 1 }, config.s3RequestTimeoutMs)),
  };
  return {
    store: createTusStore({ config, uploads, log, tempDir, s3 }),
    close: () => {
      s3?.client.destroy();
      s3?.bodyClient.destroy();
    },
  };
}

/** The row onUploadCreate (src/tus/server.ts) inserts for a tus POST, with the part size the store plans. */
function registerWith(uploads: UploadService, store: FreightStore) {
  return async (upload: Upload): Promise<void> => {
    await uploads.states.create({
      id: upload.id,
      userId: 'store-contract',
      protocol: 'tus',
      filename: upload.metadata?.filename ?? null,
      mimeType: upload.metadata?.filetype ?? null,
      totalSize: upload.size ?? null,
      storageKey: upload.id,
      metadata: upload.metadata ?? null,
      partSize: store.partSizeFor(upload.size),
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
  const { store, close } = buildStore(config, uploads, config.dataDir);
  return {
    store,
    register: registerWith(uploads, store),
    teardown: async () => {
      close();
      await database.close();
      await cleanup();
    },
  };
}

const tempDataDir = () => mkdtemp(path.join(os.tmpdir(), 'freight-store-contract-'));

dataStoreContract('S3 store (Ceph RGW) and PostgreSQL', async () => {
  const s3 = testS3Client();
  const bucket = await createTestBucket(s3, 'freight-store-contract');
  const dataDir = await tempDataDir();
  // 5 MiB parts (S3's minimum): the contract's 12 MiB uploads are written as several parts.
  const config = configFor({ ...serviceEnv(bucket.bucket, { S3_PART_SIZE: '5MiB' }), DATA_DIR: dataDir });
  return storeOver(config, await openPostgres(testDatabaseUrl()), async () => {
    await bucket.drop();
    s3.destroy();
    await rm(dataDir, { recursive: true, force: true });
  });
});

dataStoreContract('file store and PGlite (embedded defaults)', async () => {
  const dataDir = await tempDataDir();
  const config = configFor({ DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
  return storeOver(config, await openPglite('memory://'), () => rm(dataDir, { recursive: true, force: true }));
});
