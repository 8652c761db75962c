/**
 * PATCH /files/:id, answered by Freight rather than @tus/server's PatchHandler, so that the store gets what the
 * request says beyond its offset (Upload-Checksum), can be told to stop when another request wants the upload,
 * and reads the body straight from the socket. Header syntax was checked before (protocol.ts); the checks here
 * need the upload. Each carries the sentence of the tus 1.0 specification it enforces.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Locker } from '@tus/server';
import { TUS_RESUMABLE } from '@tus/utils';
import {
  FreightError,
  badRequest,
  failureReason,
  locked,
  offsetMismatch,
  payloadTooLarge,
  storageProblem,
} from '../errors.js';
import type { UploadService } from '../uploads/service.js';
import { BodyStalled } from './body.js';
import { parseUploadChecksum } from './checksum.js';
import type { FreightStore } from './upload-record.js';

export interface PatchDeps {
  uploads: UploadService;
  store: FreightStore;
  locker: Locker;
  maxUploadSize: number;
}

const header = (request: FastifyRequest, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
};

export async function patchUpload(
  deps: PatchDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  id: string,
): Promise<void> {
  const { uploads, store, locker } = deps;
  const offset = Number(header(request, 'upload-offset'));
  const checksum = parseUploadChecksum(header(request, 'upload-checksum'));
  const upload = await uploads.getOwnedLive(request.user.id, id, 'tus');
  // concatenation: "The Server MUST respond with the 403 Forbidden status to PATCH requests against a final
  // upload URL and MUST NOT modify the final or its partial uploads."
  if (upload.concat === 'final')
    throw new FreightError('ERR_UPLOAD_IS_FINAL', 'a final upload is made of its partial uploads; it takes no PATCH');

  // One writer per upload: a request that wants it while this one writes asks it to stop; this one then keeps
  // what arrived and answers (its client resumes from there).
  const stop = new AbortController();
  const gone = new AbortController();
  request.raw.once('close', () => gone.abort());
  const lock = locker.newLock(id);
  await lock.lock(gone.signal, () => stop.abort());
  let end: number;
  try {
    const current = await store.getUpload(id);
    // "If the offsets do not match, the Server MUST respond with the 409 Conflict status without modifying the
    // upload resource."
    if (current.offset !== offset) {
      throw offsetMismatch(
        `Upload-Offset ${offset} is not the upload's offset ${current.offset}; ask for it (HEAD) and resume`,
      );
    }
    let length = current.size;
    const declared = header(request, 'upload-length');
    if (declared !== undefined) {
      // creation-defer-length: "Once the length is known, the Client MUST set the Upload-Length header in the
      // next PATCH request. Once set the length MUST NOT be changed."
      if (length !== undefined)
        throw badRequest(`the upload's length is already ${length}; it cannot be declared again`);
      length = Number(declared);
      if (length < offset)
        throw badRequest(`Upload-Length ${length} is smaller than the ${offset} bytes already stored`);
      if (length > deps.maxUploadSize)
        throw payloadTooLarge(`Upload-Length ${length} exceeds this server's maximum of ${deps.maxUploadSize} bytes`);
      await store.declareUploadLength(id, length);
    }
    const limit = (length ?? deps.maxUploadSize) - offset;
    const contentLength = header(request, 'content-length');
    if (contentLength !== undefined && Number(contentLength) > limit) {
      throw payloadTooLarge(
        `a body of ${contentLength} bytes goes past the upload's length (at most ${limit} more bytes)`,
      );
    }
    end = await store.write(request.raw, id, offset, { stop: stop.signal, limit, checksum }).catch((error: unknown) => {
      if (error instanceof BodyStalled) return error.offset;
      throw error;
    });
    // Another request took the upload over (a client that reconnected, or a second client): what arrived is
    // stored, but this request lost the upload. 423, which tus clients retry: they ask for the offset and go on.
    if (stop.signal.aborted && !request.raw.complete) {
      throw locked(
        `another request took this upload over; the ${end - offset} bytes that arrived are stored; ask for the offset (HEAD) and resume`,
      );
    }
  } catch (error) {
    // A storage failure is kept on the upload (the API shows it); the upload stays resumable.
    if (storageProblem(error)) await uploads.markFailed(id, failureReason(error)).catch(() => {});
    throw error;
  } finally {
    await lock.unlock();
  }

  // "The Server MUST acknowledge successful PATCH requests with the 204 No Content status. It MUST include the
  // Upload-Offset header containing the new offset."
  const headers: Record<string, string> = { 'Tus-Resumable': TUS_RESUMABLE, 'Upload-Offset': String(end) };
  // expiration: "the Server SHOULD include the Upload-Expires header" in PATCH responses of unfinished uploads.
  const after = await uploads.findForStorage(id).catch(() => undefined);
  if (after && after.status !== 'completed' && after.expiresAt)
    headers['Upload-Expires'] = after.expiresAt.toUTCString();
  await reply.code(204).headers(headers).send();
}
