/**
 * The @tus/server instance and its hooks: where each tus request meets authentication, ownership and the
 * upload-state service.
 */
import { randomUUID } from 'node:crypto';
import { Server, type Locker, type Upload } from '@tus/server';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/index.js';
import { failureReason, storageProblem, toHttpAnswer, type HttpAnswer } from '../errors.js';
import type { UploadService } from '../uploads/service.js';
import { BodyStalled } from './body.js';
import { contextOf } from './request-context.js';
import type { FreightStore } from './upload-record.js';

export const TUS_PATH = '/files';

/** The body of a tus error answer, as tusd writes them: "ERR_MISMATCHED_OFFSET: …". */
export const tusErrorBody = (answer: HttpAnswer): string => `${answer.code}: ${answer.message}\n`;

/** "filename"/"filetype" (tus-js-client's convention) or "name"/"type" (Uppy's). */
export function fileFacts(metadata: Upload['metadata']) {
  const pick = (...keys: string[]) => keys.map((key) => metadata?.[key]).find((value) => value) ?? null;
  return { filename: pick('filename', 'name'), mimeType: pick('filetype', 'type', 'contentType') };
}

const uploadIdFromUrl = (url: string): string | undefined =>
  new URL(url, 'http://x').pathname.slice(TUS_PATH.length + 1).split('/')[0] || undefined;

export function createTusServer(deps: {
  config: Config;
  store: FreightStore;
  uploads: UploadService;
  locker: Locker;
  log: FastifyBaseLogger;
}): Server {
  const { config, store, uploads, locker, log } = deps;

  const server = new Server({
    path: TUS_PATH,
    datastore: store,
    maxSize: config.maxUploadSize,
    locker,
    // Finished uploads are files now, not uploads: the stores' remove() refuses them (409). Not
    // @tus/server's check, which reads the upload as a PATCH would and so answers 410 for an expired one.
    disableTerminationForFinishedUploads: false,
    generateUrl: config.publicUrl ? (_req, { path, id }) => `${config.publicUrl}${path}/${id}` : undefined,
    // Upload ids are UUIDs: they are the primary key of file_uploads.
    namingFunction: () => randomUUID(),

    // Every request naming an upload: the caller must own it, and it must be a tus upload (else 404: the tus
    // routes never act on a direct upload), and it must not be gone (else 410). A DELETE may also remove an
    // upload that expired or failed for good (204): only a terminated one is gone to it.
    async onIncomingRequest(req, id) {
      if (req.method === 'POST') return;
      const userId = contextOf(req).user.id;
      if (req.method === 'DELETE') await uploads.getOwnedForDeletion(userId, id, 'tus');
      else await uploads.getOwnedLive(userId, id, 'tus');
    },

    async onUploadCreate(req, upload) {
      const context = contextOf(req);
      await uploads.create({
        id: upload.id,
        userId: context.user.id,
        protocol: 'tus',
        ...fileFacts(upload.metadata),
        totalSize: upload.size ?? null,
        storageKey: upload.id,
        metadata: upload.metadata ?? null,
        // Planned now, once: every part but the last is this size, whatever the PATCHes are.
        partSize: store.partSizeFor(upload.size),
        storedOffset: 0,
        // A partial upload of a concatenation (final uploads are created by concat.ts, never here).
        concat: req.headers.get('upload-concat') === 'partial' ? 'partial' : null,
      });
      context.createdId = upload.id;
      context.identify?.(upload.id);
      return {};
    },

    // Every error answer passes here: spec-exact statuses, and storage failures recorded on the upload.
    async onResponseError(req, error) {
      // A body that stalled was ended with what arrived stored: the PATCH succeeded up to there. "The Server
      // MUST acknowledge successful PATCH requests with the 204 No Content status. It MUST include the
      // Upload-Offset header containing the new offset" (added in raw-reply.ts); the client continues from it.
      const context = contextOf(req);
      const requestLog = context.log ?? log;
      if (error instanceof BodyStalled) {
        context.stalledAt = error.offset;
        requestLog.info(
          { uploadId: uploadIdFromUrl(req.url), offset: error.offset },
          'PATCH body stalled; answered with what was stored',
        );
        return { status_code: 204, body: '' };
      }
      const answer = toHttpAnswer(error);
      if (answer.status >= 500) {
        const id = req.method === 'POST' ? context.createdId : uploadIdFromUrl(req.url);
        requestLog.error({ err: error, uploadId: id, method: req.method }, 'tus request failed');
        // A storage failure is kept on the upload (the API shows it); it stays resumable.
        if (id && (req.method === 'POST' || req.method === 'PATCH') && storageProblem(error)) {
          await uploads.markFailed(id, failureReason(error)).catch((err: unknown) => {
            requestLog.error({ err, uploadId: id }, 'could not mark the upload failed');
          });
        }
      }
      return { status_code: answer.status, body: tusErrorBody(answer) };
    },
  });

  return server;
}
