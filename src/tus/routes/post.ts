/**
 * POST /files, tus creation: a new upload, recorded before storage is asked for anything. With a body
 * (creation-with-upload) its first bytes go through the same writer as a PATCH's (lock, limits, Upload-Checksum,
 * stall rule, digest). With Upload-Concat: a partial upload, or the final upload made of partials (concat.ts).
 * Header syntax was checked before (protocol.ts).
 */
import { randomUUID } from 'node:crypto';
import { TUS_RESUMABLE } from '@tus/utils';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FreightError, badRequest, toHttpAnswer } from '../../errors.js';
import { bindUploadId } from '../../ops/logging.js';
import { createFinalUpload } from '../concat.js';
import type { TusDeps } from '../deps.js';
import { fileFacts, parseUploadMetadata } from '../metadata.js';
import { parseUploadConcat } from '../protocol.js';
import { fromTusUtils } from '../reply.js';
import { tusUpload } from '../upload-record.js';
import { TUS_PATH, uploadIdOf } from '../urls.js';
import { header, withUploadLock, writeBody } from '../write.js';

/** creation-with-upload: "the Client MAY include ... the Content-Type: application/offset+octet-stream header". */
const bringsBytes = (request: FastifyRequest): boolean =>
  header(request, 'content-type')?.split(';')[0]?.trim().toLowerCase() === 'application/offset+octet-stream';

export function postRoute(app: FastifyInstance, deps: TusDeps): void {
  const { config, uploads, store, locker } = deps;
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    if (uploadIdOf(request) !== undefined) {
      throw badRequest('POST creates uploads at /files; to continue an upload, PATCH its URL');
    }
    const userId = request.user.id;
    const given = header(request, 'upload-metadata');
    const metadata = given === undefined ? null : parseUploadMetadata(given);
    const concat = parseUploadConcat(header(request, 'upload-concat'), config.concat.maxPartials);
    if (concat?.kind === 'final') {
      const id = await createFinalUpload(
        { ...deps, maxUploadSize: config.maxUploadSize },
        userId,
        concat.urls,
        metadata,
      );
      bindUploadId(request, reply, id);
      return reply
        .code(201)
        .headers({ 'Tus-Resumable': TUS_RESUMABLE, Location: deps.urlOf(request, id) })
        .send();
    }

    const length = header(request, 'upload-length');
    const id = randomUUID();
    const created = await uploads.states.create({
      id,
      userId,
      protocol: 'tus',
      ...fileFacts(metadata),
      totalSize: length === undefined ? null : Number(length),
      storageKey: id,
      metadata,
      // Planned now, once: every part but the last is this size, whatever the PATCHes are.
      partSize: store.partSizeFor(length === undefined ? undefined : Number(length)),
      storedOffset: 0,
      concat: concat?.kind === 'partial' ? 'partial' : null,
    });
    bindUploadId(request, reply, id);
    // "The Server MUST acknowledge a successful upload creation with the 201 Created status. The Server MUST set
    // the Location header to the URL of the created resource."
    const headers: Record<string, string> = { 'Tus-Resumable': TUS_RESUMABLE, Location: deps.urlOf(request, id) };
    await store.create(tusUpload(created));
    let upload = created;
    if (bringsBytes(request)) {
      // creation-with-upload: "the Server MUST include the Upload-Offset header" in the response.
      const stop = new AbortController();
      try {
        const offset = await withUploadLock(
          locker,
          id,
          reply,
          () => stop.abort(),
          () => writeBody({ ...deps, maxUploadSize: config.maxUploadSize }, request, created, stop.signal),
        );
        headers['Upload-Offset'] = String(offset);
        upload = { ...created, storedOffset: offset };
      } catch (error) {
        // The upload exists either way. A problem of the body (460, 413 …) is the client's to hear, with the
        // upload's URL. A failure of the server or a dependency is not: the upload is answered with what was
        // stored, and the client's next PATCH meets the failure and retries, instead of creating the upload again
        // from byte 0 (what tus-js-client does after a failed creation).
        const answer = toHttpAnswer(fromTusUtils(error));
        if (answer.status < 500) {
          throw new FreightError(
            answer.code,
            answer.message,
            { ...answer.headers, Location: headers.Location! },
            answer.details,
            {
              status: answer.status,
              cause: error,
            },
          );
        }
        request.log.warn({ err: error }, 'the first bytes of a new upload could not all be stored; it stays resumable');
        upload = (await uploads.access.findForStorage(id)) ?? created;
        headers['Upload-Offset'] = String(upload.storedOffset ?? 0);
      }
    }
    // expiration: "If expiration is known at creation time, Upload-Expires header MUST be included in the response".
    if (upload.storedOffset !== upload.totalSize && upload.expiresAt) {
      headers['Upload-Expires'] = upload.expiresAt.toUTCString();
    }
    return reply.code(201).headers(headers).send();
  };
  app.post(TUS_PATH, handler);
  app.post(`${TUS_PATH}/*`, handler);
}
