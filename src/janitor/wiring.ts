/**
 * What the janitor runs on: in the server, the server's own database, service, store and S3 client
 * (janitorDeps); in `freight cleanup`, the same built from the configuration (openJanitorDeps).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/index.js';
import { withDeadlines } from '../db/availability.js';
import { openDatabase, type Database } from '../db/client.js';
import { WebhookOutbox } from '../db/webhook-outbox.js';
import { BucketInventory } from '../storage/inventory.js';
import { S3MultipartStorage } from '../storage/multipart.js';
import { S3Objects } from '../storage/objects.js';
import { createS3Client, sdkLogger } from '../storage/s3.js';
import { createTusStore } from '../tus/store.js';
import type { FreightStore } from '../tus/upload-record.js';
import type { UploadService } from '../uploads/service.js';
import { createUploadService } from '../uploads/wiring.js';
import type { JanitorDeps } from './deps.js';
import { JANITOR_LOCK_KEY } from './janitor.js';

export interface JanitorParts {
  config: Config;
  database: Database;
  uploads: UploadService;
  tusStore: FreightStore;
  /** The S3 client (with the SDK's retries and S3_REQUEST_TIMEOUT), when storage is S3. */
  s3: S3Client | undefined;
  log: FastifyBaseLogger;
}

export function janitorDeps({ config, database, uploads, tusStore, s3, log }: JanitorParts): JanitorDeps {
  const bucket = config.s3?.bucket;
  return {
    uploads,
    tusStore,
    s3:
      s3 && bucket && config.s3
        ? {
            multipart: new S3MultipartStorage(s3, bucket, config.s3.endpoint),
            // The janitor sends no bodies: one client for both.
            objects: new S3Objects(s3, s3, bucket),
            inventory: new BucketInventory(s3, bucket, config.s3.keyPrefix),
          }
        : undefined,
    exclusive: (work) => database.exclusive(JANITOR_LOCK_KEY, work),
    outbox: withDeadlines(new WebhookOutbox(database.db), config.databaseTimeoutMs),
    expiryMs: config.uploadExpiryMs,
    retentionMs: config.uploadRetentionMs,
    log,
  };
}

/**
 * For a process that is not the server (`freight cleanup [--dry-run]`): opens the database (applying
 * migrations, as the server does) and an S3 client from `config`. close() releases them.
 *
 *   const { deps, close } = await openJanitorDeps(config, log);
 *   try { report = await runJanitor(deps, { dryRun }); } finally { await close(); }
 */
export async function openJanitorDeps(
  config: Config,
  log: FastifyBaseLogger,
  /** The clock expiry and pruning decide by (tests move it). */
  now?: () => Date,
): Promise<{ deps: JanitorDeps; close(): Promise<void> }> {
  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    timeoutMs: config.databaseTimeoutMs,
  });
  const uploads = createUploadService(config, database, { now });
  const s3 = config.s3 ? createS3Client(config.s3, { logger: sdkLogger(log) }, config.s3RequestTimeoutMs) : undefined;
  // Expiring a tus upload writes nothing to the temp directory: the store only needs to be built.
  const tusStore = createTusStore({
    config,
    uploads,
    log,
    tempDir: config.tempDir,
    s3: s3 && { client: s3, bodyClient: s3 },
  });
  return {
    deps: { ...janitorDeps({ config, database, uploads, tusStore, s3, log }), now },
    close: async () => {
      s3?.destroy();
      await database.close();
    },
  };
}
