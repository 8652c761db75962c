/**
 * Mounts @tus/server under /files. Fastify authenticates and applies the spec checks of protocol.ts, then the
 * raw request and response are handed to tus, which streams the body straight into the data store. The resume
 * check (HEAD, head.ts) and downloads (GET, download.ts) are answered here, never by @tus/server.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Locker } from '@tus/server';
import { TUS_RESUMABLE } from '@tus/utils';
import type { Authenticator } from '../auth/authenticator.js';
import { authHook } from '../auth/hook.js';
import type { Config } from '../config/index.js';
import { notFound, toHttpAnswer } from '../errors.js';
import { bindUploadId } from '../ops/logging.js';
import type { Metrics } from '../ops/metrics.js';
import type { UploadService } from '../uploads/service.js';
import { answerDownload } from '../downloads/answer.js';
import type { DownloadStorage } from '../downloads/storage.js';
import { resumeCheck } from './head.js';
import { discoveryHeaders } from './options.js';
import { patchUpload } from './patch.js';
import { createFinalUpload, resumeAssemblies } from './concat.js';
import { checkTusRequest, parseUploadConcat } from './protocol.js';
import { prepareRawReply } from './raw-reply.js';
import { bindContext } from './request-context.js';
import { TUS_PATH, createTusServer, tusErrorBody } from './server.js';
import type { FreightStore } from './upload-record.js';

export interface TusPluginOptions {
  config: Config;
  authenticator: Authenticator;
  uploads: UploadService;
  store: FreightStore;
  locker: Locker;
  metrics: Metrics;
  downloads: DownloadStorage;
}

const header = (request: FastifyRequest, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
};

function closeIfBodyUnread(request: FastifyRequest, reply: FastifyReply): void {
  if (request.raw.complete) return;
  const cut = () => request.raw.socket?.destroy();
  if (reply.raw.writableFinished) cut();
  else reply.raw.once('finish', cut);
}

/** Runs `write` counted as a tus write in progress (GET /metrics). */
async function counted<T>(metrics: Metrics, write: () => Promise<T>): Promise<T> {
  metrics.tusWritesInProgress.inc();
  try {
    return await write();
  } finally {
    metrics.tusWritesInProgress.dec();
  }
}

export async function tusPlugin(app: FastifyInstance, options: TusPluginOptions): Promise<void> {
  const { config, uploads, store, locker, metrics } = options;
  const tus = createTusServer({ config, store, uploads, locker, log: app.log });

  // Leave every request body unread: tus streams it from the raw request.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  app.addHook('onRequest', authHook(options.authenticator));
  app.addHook('preHandler', async (request) => {
    checkTusRequest(request.method, request.headers, config.maxUploadSize);
  });

  // Errors of the requests Freight answers itself (PATCH, HEAD, GET, final uploads) and of the checks before
  // tus takes over (401, 412, 415, 400 …), in tus's form.
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const answer = toHttpAnswer(error);
    if (answer.status >= 500) request.log.error({ err: error }, 'tus request failed');
    return reply
      .code(answer.status)
      .headers({ 'Tus-Resumable': TUS_RESUMABLE, ...answer.headers })
      .type('text/plain; charset=utf-8')
      .send(tusErrorBody(answer));
  });

  const closing = new AbortController();
  app.addHook('onClose', async () => closing.abort());
  const concatDeps = {
    closing: closing.signal,
    uploads,
    store,
    locker,
    log: app.log,
    maxUploadSize: config.maxUploadSize,
    urlOf: (request: FastifyRequest, id: string) =>
      `${config.publicUrl ?? `${request.protocol}://${request.headers.host}`}${TUS_PATH}/${id}`,
  };
  // Final uploads whose assembly an earlier process did not finish.
  app.addHook('onReady', async () => {
    void resumeAssemblies(concatDeps).catch((error: unknown) =>
      app.log.error({ err: error }, 'could not resume assemblies'),
    );
  });

  const handler = async (request: FastifyRequest<{ Params: { '*'?: string } }>, reply: FastifyReply) => {
    const id = request.params['*']?.replace(/\/$/, '');
    // An upload URL is exactly /files/<id>: anything deeper names no upload.
    if (id?.includes('/')) throw notFound();
    // GET /files/:id downloads a completed upload (of tus: these routes act on tus uploads only).
    if (request.method === 'GET' && id) {
      return answerDownload(options.downloads, await uploads.getOwnedLive(request.user.id, id, 'tus'), request, reply);
    }
    if (request.method === 'OPTIONS') return reply.code(204).headers(discoveryHeaders(config.maxUploadSize)).send();
    const concat = request.method === 'POST' && !id ? parseUploadConcat(header(request, 'upload-concat')) : undefined;
    if (concat?.kind === 'final') return createFinalUpload(concatDeps, request, reply, concat.urls);
    if (request.method === 'PATCH' && id) {
      return counted(metrics, () =>
        patchUpload({ uploads, store, locker, maxUploadSize: config.maxUploadSize }, request, reply, id),
      );
    }
    if (request.method === 'HEAD' && id) {
      const aborted = new AbortController();
      request.raw.once('close', () => aborted.abort());
      const headers = await resumeCheck(
        { uploads, store, locker, urlOf: (upload) => concatDeps.urlOf(request, upload) },
        request.user.id,
        id,
        aborted.signal,
      );
      return reply.code(200).headers(headers).send();
    }
    prepareRawReply(reply);
    reply.hijack();
    bindContext(request.raw, {
      user: request.user,
      get log() {
        return request.log;
      },
      identify: (uploadId) => bindUploadId(request, reply, uploadId),
    });
    // A creation with its first bytes (creation-with-upload) streams bytes into the store.
    const writing = request.method === 'POST' && request.headers['content-type'] === 'application/offset+octet-stream';
    await (writing ? counted(metrics, () => tus.handle(request.raw, reply.raw)) : tus.handle(request.raw, reply.raw));
    closeIfBodyUnread(request, reply);
  };

  // Answers given before the body was read to its end (a stall, a conflict, a failure, a body too large) close
  // the connection rather than drain the rest at the client's pace; the client resumes on a new one.
  app.addHook('onSend', async (request, reply) => {
    if (!request.raw.complete) reply.header('Connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => closeIfBodyUnread(request, reply));
  const methods = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS'];
  app.route({ method: methods, url: TUS_PATH, exposeHeadRoute: false, handler });
  app.route({ method: methods, url: `${TUS_PATH}/*`, exposeHeadRoute: false, handler });
}
