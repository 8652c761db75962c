/**
 * buildApp(config): the whole server, wired. Each concern is a plugin:
 *   /files/*          tus 1.0 uploads                     src/tus/
 *   /api/multipart/*  direct-to-S3 multipart uploads      src/direct/
 *   /s3/multipart/*   the same, in Uppy Companion's shape src/direct/
 *   /api/uploads/*    the owner's view of their uploads   src/api/
 *   /healthz /readyz  operations                          src/ops/
 *   /                 the upload page (built from web/)   src/web/
 * State lives in one upload-state service (src/uploads/) over Postgres or PGlite (src/db/).
 */
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import cors from '@fastify/cors';
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Locker } from '@tus/utils';
import Fastify, { type FastifyInstance } from 'fastify';
import { jsonErrorHandler, notFoundHandler } from './api/error-handler.js';
import { uploadsApi } from './api/uploads.js';
import { Authenticator, type User } from './auth/authenticator.js';
import { authHook } from './auth/hook.js';
import type { Config, S3Config } from './config/index.js';
import { withDeadlines } from './db/availability.js';
import { openDatabase, type Database } from './db/client.js';
import { directPlugin } from './direct/plugin.js';
import { PartPresigner } from './direct/presigner.js';
import { DirectUploads } from './direct/service.js';
import { UploadRepository } from './db/repository.js';
import { corsPolicy } from './http/cors.js';
import { healthRoutes, type ReadinessCheck } from './ops/health.js';
import { S3MultipartStorage } from './storage/multipart.js';
import { createS3Client, sdkLogger } from './storage/s3.js';
import { processTempDir } from './storage/temp-dir.js';
import { MemoryLocker } from '@tus/server';
import { PostgresLocker } from './tus/lockers/postgres-locker.js';
import { tusPlugin } from './tus/plugin.js';
import { createTusStore } from './tus/store.js';
import { UploadService } from './uploads/service.js';
import { webPlugin } from './web/plugin.js';

/** Parts a deployment or a test may swap; everything else follows from the config. */
export interface AppDeps {
  /** Serializes requests on one upload (default: in-process memory). */
  locker?: Locker;
}

function createDirectUploads(config: Config, s3Config: S3Config, s3: S3Client, uploads: UploadService): DirectUploads {
  // Transfer Acceleration only changes where clients send parts: the URLs are signed by a client of its own.
  const presignClient = s3Config.accelerate
    ? createS3Client({ ...s3Config, endpoint: undefined, forcePathStyle: false }, { useAccelerateEndpoint: true }, config.s3RequestTimeoutMs)
    : s3;
  return new DirectUploads(
    uploads,
    new S3MultipartStorage(s3, s3Config.bucket, s3Config.endpoint),
    new PartPresigner(presignClient, s3Config.bucket, config.presignExpiresMs / 1000),
    { preferredPartSize: config.partSize, maxParts: config.maxParts, maxUploadSize: config.maxUploadSize },
  );
}

/**
 * The tus lock: on PostgreSQL, advisory locks every instance shares (so two instances never write one upload at
 * once); on the embedded PGlite, which only one process can open, the in-memory locker.
 */
async function createLocker(app: FastifyInstance, config: Config, database: Database): Promise<Locker> {
  if (database.kind === 'pglite' || !config.databaseUrl) return new MemoryLocker({ acquireLockTimeout: config.lockTimeoutMs });
  const locker = await PostgresLocker.create({
    url: config.databaseUrl,
    acquireTimeoutMs: config.lockTimeoutMs,
    queryTimeoutMs: config.databaseTimeoutMs,
    log: app.log,
  });
  app.addHook('onClose', () => locker.close());
  return locker;
}

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: config.logLevel },
    // A client that stops sending for this long is cut off; its upload stays resumable from what arrived.
    connectionTimeout: 120_000,
    // A body field the schema does not know is a client mistake to report (400), not to drop silently.
    ajv: { customOptions: { removeAdditional: false } },
    // S3 UploadIds are route parameters of the Companion routes, and AWS and R2 hand out ids of ~340
    // characters (the router's default limit is 100). Longer than any real id: Fastify's 414.
    routerOptions: { maxParamLength: 1000 },
  });

  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, timeoutMs: config.databaseTimeoutMs });
  app.addHook('onClose', () => database.close());
  const tempDir = await processTempDir(config.tempDir);
  if (tempDir.reclaimed.length > 0) app.log.info({ reclaimed: tempDir.reclaimed }, 'removed part files of processes that no longer run');
  app.addHook('onClose', () => tempDir.remove());

  const authenticator = await Authenticator.create(config.auth, config.tokens);
  if (config.auth.mode === 'disabled') {
    app.log.warn('AUTH_DISABLED=true: every request is the user "anonymous". Never run like this in production.');
  } else if (config.auth.mode === 'dev-secret') {
    app.log.warn(`no AUTH_JWT_SECRET: using a development secret kept in ${config.auth.secretFile} (npm run token -- <user>)`);
  }

  const queries = new UploadRepository(database.db);
  // A creation answered 503 at its deadline but recorded later is removed: its client never saw it.
  const undoLateCreation = (row: { id: string }) => queries.deleteUnusedUpload(row.id);
  const repository = withDeadlines(queries, config.databaseTimeoutMs, {
    insertUpload: undoLateCreation,
    insertUploadWithinLimit: undoLateCreation,
  });
  const uploads = new UploadService(repository, { expiryMs: config.uploadExpiryMs, maxOpenUploadsPerUser: config.userMaxOpenUploads });
  const logger = sdkLogger(app.log);
  const s3 = config.s3 ? createS3Client(config.s3, { logger }, config.s3RequestTimeoutMs) : undefined;
  // Bodies read from temp files are retried by the store itself (the SDK cannot replay a consumed stream).
  const s3Bodies = config.s3 ? createS3Client(config.s3, { logger, maxAttempts: 1 }, config.s3RequestTimeoutMs) : undefined;
  app.addHook('onClose', async () => {
    s3?.destroy();
    s3Bodies?.destroy();
  });
  const direct = config.s3 && s3 ? createDirectUploads(config, config.s3, s3, uploads) : undefined;

  app.decorateRequest('user', null as unknown as User);
  await app.register(cors, corsPolicy(config));
  app.setErrorHandler(jsonErrorHandler);
  app.setNotFoundHandler(notFoundHandler);

  await app.register(tusPlugin, {
    config,
    authenticator,
    uploads,
    store: createTusStore({ config, uploads, log: app.log, tempDir: tempDir.dir, s3: s3 && s3Bodies && { client: s3, bodyClient: s3Bodies } }),
    locker: deps.locker ?? (await createLocker(app, config, database)),
  });

  await app.register(async (api) => {
    api.addHook('onRequest', authHook(authenticator));
    await api.register(uploadsApi, { uploads });
    await api.register(directPlugin, { direct });
  });

  const checks: Record<string, ReadinessCheck> = {
    database: () => database.ping(),
    storage: s3
      ? async () => {
          await s3.send(new HeadBucketCommand({ Bucket: config.s3!.bucket }));
        }
      : () => access(path.join(config.dataDir), constants.W_OK),
  };
  await app.register(healthRoutes, { checks });
  await app.register(webPlugin);

  return app;
}
