/**
 * PATCH /files/:id: bytes for an upload, from its offset. Header syntax was checked before (protocol.ts); the
 * checks here need the upload, each with the sentence of the tus 1.0 specification it enforces.
 *
 * The lock is taken first and the row read once, under it: the offset, the staged bytes and the running digest
 * the write starts from cannot be moved by anyone else meanwhile (every writer holds the lock).
 */
import { TUS_RESUMABLE } from '@tus/utils';
import type { FastifyInstance } from 'fastify';
import { FreightError, badRequest, notFound, offsetMismatch, payloadTooLarge } from '../../errors.js';
import type { TusDeps } from '../deps.js';
import { TUS_PATH, uploadIdOf } from '../urls.js';
import { header, withUploadLock, writeBody } from '../write.js';
import { awaitingHeaders } from '../awaiting.js';

export function patchRoute(app: FastifyInstance, deps: TusDeps): void {
  const { uploads, store, locker, config } = deps;
  app.patch(`${TUS_PATH}/*`, async (request, reply) => {
    const id = uploadIdOf(request);
    if (!id) throw notFound('PATCH an upload at its URL (/files/<id>)');
    const offset = Number(header(request, 'upload-offset'));
    // One writer per upload: a request that wants it while this one writes asks it to stop; this one then keeps
    // what arrived and answers (its client resumes from there).
    const stop = new AbortController();
    const { end, expiresAt, finished } = await withUploadLock(
      locker,
      id,
      reply,
      () => stop.abort(),
      async () => {
        let upload = await uploads.access.getOwnedLive(request.user.id, id, 'tus');
        // concatenation: "The Server MUST respond with the 403 Forbidden status to PATCH requests against a final
        // upload URL and MUST NOT modify the final or its partial uploads."
        if (upload.concat === 'final') {
          throw new FreightError(
            'ERR_UPLOAD_IS_FINAL',
            'a final upload is made of its partial uploads; it takes no PATCH',
          );
        }
        // "If the offsets do not match, the Server MUST respond with the 409 Conflict status without modifying the
        // upload resource."
        if (upload.storedOffset !== offset) {
          throw offsetMismatch(
            `Upload-Offset ${offset} is not the upload's offset ${upload.storedOffset}; ask for it (HEAD) and resume`,
          );
        }
        const declared = header(request, 'upload-length');
        if (declared !== undefined) {
          // creation-defer-length: "Once the length is known, the Client MUST set the Upload-Length header in the
          // next PATCH request. Once set the length MUST NOT be changed."
          if (upload.totalSize !== null) {
            throw badRequest(`the upload's length is already ${upload.totalSize}; it cannot be declared again`);
          }
          const length = Number(declared);
          if (length < offset)
            throw badRequest(`Upload-Length ${length} is smaller than the ${offset} bytes already stored`);
          if (length > config.maxUploadSize) {
            throw payloadTooLarge(
              `Upload-Length ${length} exceeds this server's maximum of ${config.maxUploadSize} bytes`,
            );
          }
          await store.declareUploadLength(id, length);
          upload = { ...upload, totalSize: length };
        }
        const end = await writeBody({ ...deps, maxUploadSize: config.maxUploadSize }, request, upload, stop.signal);
        if (end !== upload.totalSize)
          return { end, expiresAt: uploads.ledger.expiresAtAfter(upload, end), finished: undefined };
        // The last bytes: the upload is completed now, or awaiting approval (WEBHOOK_PRE_FINISH's receiver has not
        // answered yet), which the answer says.
        return { end, expiresAt: null, finished: await uploads.access.findForStorage(id) };
      },
    );
    // "The Server MUST acknowledge successful PATCH requests with the 204 No Content status. It MUST include the
    // Upload-Offset header containing the new offset."
    const headers: Record<string, string> = {
      'Tus-Resumable': TUS_RESUMABLE,
      'Upload-Offset': String(end),
      ...(finished && awaitingHeaders(finished)),
    };
    // expiration: "the Server SHOULD include the Upload-Expires header" in PATCH responses of unfinished uploads.
    if (expiresAt) headers['Upload-Expires'] = expiresAt.toUTCString();
    return reply.code(204).headers(headers).send();
  });
}
