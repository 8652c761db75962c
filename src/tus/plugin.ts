/**
 * The tus 1.0 endpoint under /files: one Fastify route per verb (routes/), one body writer for PATCH and for a
 * creation with its first bytes (write.ts), one error writer (reply.ts). Every request is authenticated, then
 * checked against the spec's header rules (protocol.ts) before its route runs. Bodies are never parsed: the
 * writer streams them from the socket into the store.
 */
import type { UploadLocker } from './lockers/locker.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator.js';
import { authHook } from '../auth/hook.js';
import type { Config } from '../config/index.js';
import type { DownloadStorage } from '../downloads/storage.js';
import type { Metrics } from '../ops/metrics.js';
import type { UploadService } from '../uploads/service.js';
import type { FinalAssemblies } from './assembly.js';
import type { TusDeps } from './deps.js';
import { checkTusRequest } from './protocol.js';
import { tusErrorHandler } from './reply.js';
import { deleteRoute } from './routes/delete.js';
import { getRoute } from './routes/get.js';
import { headRoute } from './routes/head.js';
import { optionsRoute } from './routes/options.js';
import { patchRoute } from './routes/patch.js';
import { postRoute } from './routes/post.js';
import type { FreightStore } from './upload-record.js';
import { uploadUrl } from './urls.js';

export interface TusPluginOptions {
  config: Config;
  authenticator: Authenticator;
  uploads: UploadService;
  store: FreightStore;
  locker: UploadLocker;
  metrics: Metrics;
  downloads: DownloadStorage;
  /** The background assembly of final uploads (built by app.ts, which the janitor shares). */
  assemblies: FinalAssemblies;
}

/**
 * An answer given before the body was read to its end (a stall, a conflict, a failure, a body too large) closes
 * the connection rather than drain the rest at the client's pace; the client resumes on a new one.
 */
function closeIfBodyUnread(request: FastifyRequest, reply: FastifyReply): void {
  if (request.raw.complete) return;
  const cut = () => request.raw.socket?.destroy();
  if (reply.raw.writableFinished) cut();
  else reply.raw.once('finish', cut);
}

export async function tusPlugin(app: FastifyInstance, options: TusPluginOptions): Promise<void> {
  const { config } = options;
  // Leave every request body unread: the body writer streams it from the raw request.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  app.addHook('onRequest', authHook(options.authenticator));
  app.addHook('preHandler', async (request) =>
    checkTusRequest(request.method, request.headers, config.maxUploadSize, config.concat.maxPartials),
  );
  app.setErrorHandler(tusErrorHandler);
  app.addHook('onSend', async (request, reply) => {
    if (!request.raw.complete) reply.header('Connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => closeIfBodyUnread(request, reply));

  // No assembly starts, and none is retried, once the server closes (the next instance takes them up).
  app.addHook('onClose', async () => options.assemblies.close());
  const deps: TusDeps = {
    ...options,
    urlOf: (request, id) => uploadUrl(config.publicUrl, request, id),
  };
  for (const route of [postRoute, patchRoute, headRoute, getRoute, deleteRoute, optionsRoute]) route(app, deps);

  // Final uploads whose assembly an earlier process did not finish (and that no other instance is assembling).
  app.addHook('onReady', async () => {
    void options.assemblies
      .resumeIdle()
      .catch((error: unknown) => app.log.error({ err: error }, 'could not take up unfinished final uploads'));
  });
}
