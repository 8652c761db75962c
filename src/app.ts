/**
 * buildApp(config): the whole server, wired. Each concern is a plugin:
 *   /files/*          tus 1.0 uploads                     src/tus/
 *   /api/multipart/*  direct-to-S3 multipart uploads      src/direct/
 *   /s3/multipart/*   the same, in Uppy Companion's shape src/direct/
 *   /api/uploads/*    the owner's view of their uploads   src/api/
 *   /downloads/:id    download links (no token: signed)   src/downloads/
 *   /healthz /readyz  operations                          src/ops/
 *   /metrics          Prometheus metrics                  src/ops/
 *   /                 the upload page (built from web/)   src/web/
 * The janitor runs every JANITOR_INTERVAL (src/janitor/); webhooks are delivered from an outbox (src/webhooks/).
 * State lives in one upload-state service (src/uploads/) over Postgres or PGlite (src/db/).
 */
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import cors from '@fastify/cors';
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import Fastify, { type FastifyInstance } from 'fastify';
import { jsonErrorHandler, notFoundHandler } from './api/error-handler.js';
import { uploadsApi } from './api/uploads.js';
import { Authenticator, type User } from './auth/authenticator.js';
import { authHook } from './auth/hook.js';
import type { Config, S3Config } from './config/index.js';
import { openDatabase, type Database } from './db/client.js';
import { directPlugin } from './direct/plugin.js';
import { PartPresigner } from './direct/presigner.js';
import { DirectUploads } from './direct/service.js';
import { downloadLinkRoute } from './downloads/link-route.js';
import { DownloadLinks, linkKey } from './downloads/links.js';
import { FileDownloads, PresignedDownloads, type DownloadStorage } from './downloads/storage.js';
import { corsPolicy } from './http/cors.js';
import { runJanitor, type JanitorOptions } from './janitor/janitor.js';
import type { JanitorReport } from './janitor/report.js';
import { janitorDeps } from './janitor/wiring.js';
import { scheduleJanitor } from './janitor/schedule.js';
import { healthRoutes, type ReadinessCheck } from './ops/health.js';
import { logRequests, loggingOptions } from './ops/logging.js';
import { Metrics } from './ops/metrics.js';
import { metricsRoute, timeRequests } from './ops/metrics-route.js';
import { S3MultipartStorage } from './storage/multipart.js';
import { createS3Client, objectSize, sdkLogger } from './storage/s3.js';
import { processTempDir } from './storage/temp-dir.js';
import type { UploadLocker } from './tus/lockers/locker.js';
import { MemoryLocker } from './tus/lockers/memory-locker.js';
import { PostgresLocker } from './tus/lockers/postgres-locker.js';
import { timedLocker } from './tus/lockers/timed-locker.js';
import { overrideTusMethod } from './tus/method-override.js';
import { WatchedLocker } from './tus/lockers/watched-locker.js';
import { tusPlugin } from './tus/plugin.js';
import { FinalAssemblies } from './tus/assembly.js';
import { createTusStore } from './tus/store.js';
import type { UploadService } from './uploads/service.js';
import { createUploadService } from './uploads/wiring.js';
import { deliverWebhooks } from './webhooks/delivery.js';
import { preCreateCheck } from './webhooks/pre-create.js';
import { preFinishCheck } from './webhooks/pre-finish.js';
import { ApprovalLoop } from './webhooks/approval-loop.js';
import { webPlugin } from './web/plugin.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The janitor on this server's database and storage: one run now (as the schedule does every JANITOR_INTERVAL). */
    janitor: { run(options?: JanitorOptions): Promise<JanitorReport> };
    /** WEBHOOK_PRE_FINISH: asks now about the uploads awaiting approval whose next ask is due (as its loop does). */
    approvals: { askDue(): Promise<number> };
  }
}

/** Parts a deployment or a test may swap; everything else follows from the config. */
export interface AppDeps {
  /** Serializes requests on one upload (default: in-process memory). */
  locker?: UploadLocker;
  /** Where the JSON log lines go (default: stdout); tests capture them. */
  logStream?: { write(line: string): void };
  /**
   * The one clock of the server (default: the system's): expiry, the janitor and signed download links decide by
   * it; tests move it instead of waiting.
   */
  now?: () => Date;
}

/**
 * The client that signs URLs for clients (part URLs, download redirects): a client of its own, never timed
 * (presigning calls no S3), for the endpoint clients reach: S3_PUBLIC_ENDPOINT, or Transfer Acceleration's.
 */
function createPresignClient(config: Config, s3Config: S3Config): S3Client {
  return s3Config.accelerate
    ? createS3Client(
        { ...s3Config, endpoint: undefined, forcePathStyle: false },
        { useAccelerateEndpoint: true },
        config.s3RequestTimeoutMs,
      )
    : createS3Client(
        { ...s3Config, endpoint: s3Config.publicEndpoint ?? s3Config.endpoint },
        {},
        config.s3RequestTimeoutMs,
      );
}

function createDirectUploads(
  config: Config,
  s3Config: S3Config,
  s3: S3Client,
  presignClient: S3Client,
  uploads: UploadService,
): DirectUploads {
  return new DirectUploads(
    uploads,
    // The `location` of a completed upload is for clients: at the endpoint they reach.
    new S3MultipartStorage(s3, s3Config.bucket, s3Config.publicEndpoint ?? s3Config.endpoint),
    new PartPresigner(presignClient, s3Config.bucket, config.presignExpiresMs / 1000),
    { preferredPartSize: config.partSize, maxParts: config.maxParts, maxUploadSize: config.maxUploadSize },
  );
}

/**
 * The tus lock: on PostgreSQL, advisory locks every instance shares (so two instances never write one upload at
 * once); on the embedded PGlite, which only one process can open, the in-memory locker.
 */
async function createLocker(app: FastifyInstance, config: Config, database: Database): Promise<UploadLocker> {
  if (database.kind === 'pglite' || !config.databaseUrl)
    return new MemoryLocker({ acquireTimeoutMs: config.lockTimeoutMs });
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
    // pino JSON with request ids, upload ids, and secrets redacted (src/ops/logging.ts).
    ...loggingOptions(config, deps.logStream),
    // A client that stops sending for this long is cut off; its upload stays resumable from what arrived.
    connectionTimeout: 120_000,
    // A body field the schema does not know is a client mistake to report (400), not to drop silently.
    ajv: { customOptions: { removeAdditional: false } },
    // S3 UploadIds are route parameters of the Companion routes, and AWS and R2 hand out ids of ~340
    // characters (the router's default limit is 100). Longer than any real id: Fastify's 414.
    routerOptions: { maxParamLength: 1000 },
    // tus's X-HTTP-Method-Override is honoured before routing (src/tus/method-override.ts).
    rewriteUrl: overrideTusMethod,
  });
  logRequests(app);
  const metrics = new Metrics();
  app.decorate('metrics', metrics);
  timeRequests(app, metrics);

  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    timeoutMs: config.databaseTimeoutMs,
  });
  app.addHook('onClose', () => database.close());
  const tempDir = await processTempDir(config.tempDir);
  if (tempDir.reclaimed.length > 0)
    app.log.info({ reclaimed: tempDir.reclaimed }, 'removed part files of processes that no longer run');
  if (!tempDir.locked)
    app.log.warn(
      { dir: tempDir.dir },
      'no flock command (util-linux): the part directory is not locked, so do not share TMPDIR with other instances',
    );
  app.addHook('onClose', () => tempDir.remove());

  const authenticator = await Authenticator.create(config.auth, config.tokens);
  if (config.auth.mode === 'disabled') {
    app.log.warn('AUTH_DISABLED=true: every request is the user "anonymous". Never run like this in production.');
  } else if (config.auth.mode === 'dev-secret') {
    app.log.warn(
      `no AUTH_JWT_SECRET: using a development secret kept in ${config.auth.secretFile} (npm run token -- <user>)`,
    );
  }

  // Expiry must leave alone the uploads a request holds. PostgreSQL's advisory locks are tested in the expiring
  // statement itself; locks that live in this process's memory (PGlite's, a test's) are watched here.
  const baseLocker = deps.locker ?? (await createLocker(app, config, database));
  const watched = baseLocker instanceof PostgresLocker ? undefined : new WatchedLocker(baseLocker);
  const locker = watched ?? baseLocker;
  const logger = sdkLogger(app.log);
  const observe = metrics.observeS3Call.bind(metrics);
  const s3 = config.s3 ? createS3Client(config.s3, { logger }, config.s3RequestTimeoutMs, observe) : undefined;
  const bucket = config.s3?.bucket;
  const uploads: UploadService = createUploadService(config, database, {
    admit: config.webhooks?.preCreate
      ? preCreateCheck(
          config.webhooks,
          app.log,
          config.s3 && s3 && bucket !== undefined
            ? {
                keyPrefix: config.s3.keyPrefix,
                tagging: config.s3.tagging,
                reservedTags: config.s3.tagging ? ['sha256'] : [],
                objectExists: async (key) => (await objectSize(s3, bucket, key)) !== undefined,
              }
            : undefined,
        )
      : undefined,
    preFinish: config.webhooks?.preFinish
      ? preFinishCheck(config.webhooks, app.log, (upload) => uploads.ledger.countStoredParts(upload.id), deps.now)
      : undefined,
    metrics,
    locks: watched,
    now: deps.now,
  });
  // Bodies read from temp files are retried by the store itself (the SDK cannot replay a consumed stream).
  const s3Bodies = config.s3
    ? createS3Client(config.s3, { logger, maxAttempts: 1 }, config.s3RequestTimeoutMs, observe)
    : undefined;
  const presignClient = config.s3 ? createPresignClient(config, config.s3) : undefined;
  app.addHook('onClose', async () => {
    s3?.destroy();
    s3Bodies?.destroy();
    presignClient?.destroy();
  });
  const direct =
    config.s3 && s3 && presignClient ? createDirectUploads(config, config.s3, s3, presignClient, uploads) : undefined;
  const downloads: DownloadStorage =
    config.s3 && presignClient
      ? new PresignedDownloads(presignClient, config.s3.bucket, config.presignExpiresMs / 1000, deps.now)
      : new FileDownloads(path.join(config.dataDir, 'files'));
  const links = new DownloadLinks(downloads, await linkKey(config.auth), config.presignExpiresMs, deps.now);

  app.decorateRequest('user', null as unknown as User);
  await app.register(cors, corsPolicy(config));
  app.setErrorHandler(jsonErrorHandler);
  app.setNotFoundHandler(notFoundHandler);

  const tusStore = createTusStore({
    config,
    uploads,
    log: app.log,
    tempDir: tempDir.dir,
    s3: s3 && s3Bodies && { client: s3, bodyClient: s3Bodies },
    metrics,
  });
  const tusLocker = timedLocker(locker, (seconds, outcome) => metrics.lockWait.observe({ outcome }, seconds));
  // Final uploads (tus concatenation) are assembled in the background; the janitor takes up those nobody assembles.
  const assemblies = new FinalAssemblies({
    uploads,
    store: tusStore,
    locker: tusLocker,
    log: app.log,
    concurrency: config.concat.concurrency,
    maxAttempts: config.concat.maxAttempts,
  });
  await app.register(tusPlugin, {
    config,
    authenticator,
    uploads,
    store: tusStore,
    locker: tusLocker,
    metrics,
    downloads,
    assemblies,
  });

  await app.register(async (api) => {
    api.addHook('onRequest', authHook(authenticator));
    await api.register(uploadsApi, { uploads, downloads, links, publicUrl: config.publicUrl });
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
  // Download links carry their own permission (a signature), so no token: outside the authenticated scope.
  await app.register(downloadLinkRoute, { links, uploads, downloads });
  await app.register(healthRoutes, { checks });
  await app.register(metricsRoute, { metrics, token: config.metricsToken });

  deliverWebhooks(app, config, database, metrics);
  const approvals = new ApprovalLoop({
    uploads: uploads.states,
    removal: (upload) => tusStore.removal(upload),
    log: app.log,
  });
  app.decorate('approvals', { askDue: () => approvals.askDue() });
  if (config.webhooks?.preFinish) {
    app.addHook('onReady', async () => approvals.start());
    app.addHook('onClose', () => approvals.stop());
  }
  const janitor = {
    ...janitorDeps({ config, database, uploads, tusStore, s3, log: app.log }),
    finals: assemblies,
    now: deps.now,
  };
  app.decorate('janitor', {
    run: (options?: JanitorOptions) => metrics.countJanitorRun(() => runJanitor(janitor, options)),
  });
  if (config.janitorIntervalMs > 0) scheduleJanitor(app, app.janitor.run, config.janitorIntervalMs);
  await app.register(webPlugin);

  return app;
}
