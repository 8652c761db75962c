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
import { checkTusRequest } from './protocol.js';
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

/** A request that streams bytes into the store: a PATCH, or a creation with its first bytes (creation-with-upload). */
const writesBytes = (request: FastifyRequest): boolean =>
  request.method === 'PATCH' || (request.method === 'POST' && request.headers['content-type'] === 'application/offset+octet-stream');

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

  // Errors raised before tus takes over (401, 412, 415, 400 …) and by the resume check, in tus's form.
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const answer = toHttpAnswer(error);
    if (answer.status >= 500) request.log.error({ err: error }, 'tus request failed before reaching tus');
    return reply
      .code(answer.status)
      .headers({ 'Tus-Resumable': TUS_RESUMABLE, ...answer.headers })
      .type('text/plain; charset=utf-8')
      .send(tusErrorBody(answer));
  });

  const handler = async (request: FastifyRequest<{ Params: { '*'?: string } }>, reply: FastifyReply) => {
    const id = request.params['*']?.replace(/\/$/, '');
    // An upload URL is exactly /files/<id>: anything deeper names no upload.
    if (id?.includes('/')) throw notFound();
    // GET /files/:id downloads a completed upload (of tus: these routes act on tus uploads only).
    if (request.method === 'GET' && id) {
      return answerDownload(options.downloads, await uploads.getOwnedLive(request.user.id, id, 'tus'), request, reply);
    }
    if (request.method === 'HEAD' && id) {
      const aborted = new AbortController();
      request.raw.once('close', () => aborted.abort());
      const headers = await resumeCheck({ uploads, store, locker }, request.user.id, id, aborted.signal);
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
    const writing = writesBytes(request);
    if (writing) metrics.tusWritesInProgress.inc();
    try {
      await tus.handle(request.raw, reply.raw);
    } finally {
      if (writing) metrics.tusWritesInProgress.dec();
    }
    // A body not read to its end (a PATCH answered early: a stall, a conflict, a failure) is not drained at the
    // client's pace: once the answer is out, the connection closes and the client resumes on a new one.
    if (!request.raw.complete) {
      const cut = () => request.raw.socket?.destroy();
      if (reply.raw.writableFinished) cut();
      else reply.raw.once('finish', cut);
    }
  };
  const methods = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS'];
  app.route({ method: methods, url: TUS_PATH, exposeHeadRoute: false, handler });
  app.route({ method: methods, url: `${TUS_PATH}/*`, exposeHeadRoute: false, handler });
}
