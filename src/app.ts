/**
 * buildApp(config): the whole server, wired. Each concern is a plugin:
 *   /files/*          tus 1.0 uploads                     src/tus/
 *   /api/multipart/*  direct-to-S3 multipart uploads      src/direct/
 *   /s3/multipart/*   the same, in Uppy Companion's shape src/direct/
 *   /api/uploads/*    the owner's view of their uploads   src/api/
 *   /healthz /readyz  operations                          src/ops/
 * State lives in one upload-state service (src/uploads/) over Postgres or PGlite (src/db/).
 */
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import cors from '@fastify/cors';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import type { Locker } from '@tus/utils';
import Fastify, { type FastifyInstance } from 'fastify';
import { jsonErrorHandler, notFoundHandler } from './api/error-handler.js';
import { uploadsApi } from './api/uploads.js';
import { Authenticator, type User } from './auth/authenticator.js';
import { authHook } from './auth/hook.js';
import type { Config } from './config/index.js';
import { openDatabase } from './db/client.js';
import { UploadRepository } from './db/repository.js';
import { healthRoutes, type ReadinessCheck } from './ops/health.js';
import { createS3Client } from './storage/s3.js';
import { MemoryLocker } from '@tus/server';
import { tusPlugin } from './tus/plugin.js';
import { createTusStore } from './tus/store.js';
import { UploadService } from './uploads/service.js';

/** Parts a deployment or a test may swap; everything else follows from the config. */
export interface AppDeps {
  /** Serializes requests on one upload (default: in-process memory). */
  locker?: Locker;
}

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: config.logLevel },
    // A client that stops sending for this long is cut off; its upload stays resumable from what arrived.
    connectionTimeout: 120_000,
  });

  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  app.addHook('onClose', () => database.close());

  const authenticator = await Authenticator.create(config.auth);
  if (config.auth.mode === 'disabled') {
    app.log.warn('AUTH_DISABLED=true: every request is the user "anonymous". Never run like this in production.');
  } else if (config.auth.mode === 'dev-secret') {
    app.log.warn(`no AUTH_JWT_SECRET: using a development secret kept in ${config.auth.secretFile} (npm run token -- <user>)`);
  }

  const uploads = new UploadService(new UploadRepository(database.db), { expiryMs: config.uploadExpiryMs });
  const s3 = config.s3 ? createS3Client(config.s3) : undefined;
  app.addHook('onClose', async () => s3?.destroy());

  app.decorateRequest('user', null as unknown as User);
  app.setErrorHandler(jsonErrorHandler);
  app.setNotFoundHandler(notFoundHandler);

  await app.register(tusPlugin, {
    config,
    authenticator,
    uploads,
    store: createTusStore(config, uploads),
    locker: deps.locker ?? new MemoryLocker(),
  });

  await app.register(async (api) => {
    await api.register(cors, {
      origin: config.corsOrigins === '*' ? '*' : config.corsOrigins,
      allowedHeaders: ['Authorization', 'Content-Type'],
      exposedHeaders: ['Location', 'WWW-Authenticate'],
      maxAge: 86_400,
    });
    api.addHook('onRequest', authHook(authenticator));
    await api.register(uploadsApi, { uploads });
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

  return app;
}
