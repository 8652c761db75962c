/**
 * HEAD /files/:id, the resume check. The offset it answers is one no writer will move afterwards: if a request is
 * writing the upload (typically the PATCH of a client that was cut off and has not noticed yet), it is asked to
 * stop and store what it has, and the answer waits for it (at most 10 s, or LOCK_TIMEOUT if shorter; then 423 with
 * Retry-After, which clients retry). tusd and @tus/server take the upload's lock on HEAD for the same reason: a
 * client that PATCHes at the offset it was given must not meet a 409 (several clients never retry one). An upload whose bytes are all stored but which is not assembled yet (S3
 * failed at that moment) is assembled now, under the same lock.
 *
 * A resume check must never make a client start over because a dependency hiccupped: tus-js-client (and so Uppy)
 * answers any failed HEAD other than 423 by creating a new upload from byte 0. So when the database or storage
 * cannot serve the check, the answer is 423 Locked with Retry-After, which both retry on their schedule.
 */
import { Metadata, TUS_RESUMABLE } from '@tus/utils';
import type { FastifyInstance } from 'fastify';
import type { FileUpload } from '../../db/schema.js';
import { isTransient, locked, notFound } from '../../errors.js';
import type { TusDeps } from '../deps.js';
import { fromTusUtils } from '../reply.js';
import { TUS_PATH, uploadIdOf } from '../urls.js';
import { withUploadLock } from '../write.js';
import { isAssembled, isCompleted } from '../../lifecycle.js';
import { awaitingHeaders } from '../awaiting.js';

/**
 * The longest a resume check waits for a running writer to stop and store what it has (it is asked to at once; a
 * writer stops within seconds, unless storage itself hangs): then 423 with Retry-After, which clients retry.
 */
const WRITER_WAIT_MS = 10_000;

const needsAssembly = (upload: FileUpload): boolean =>
  upload.concat !== 'final' &&
  !isAssembled(upload.status) &&
  upload.totalSize !== null &&
  upload.storedOffset === upload.totalSize;

export function headRoute(app: FastifyInstance, deps: TusDeps): void {
  const { uploads, store, locker } = deps;
  app.head(`${TUS_PATH}/*`, async (request, reply) => {
    const id = uploadIdOf(request);
    if (!id) throw notFound('HEAD an upload at its URL (/files/<id>)');
    const userId = request.user.id;
    let upload: FileUpload;
    try {
      // One query, the owner's row and whether any instance writes it: most resume checks end here. The owner is
      // checked before the lock is asked for: only the owner may make a running writer stop.
      const probed = await uploads.access.getOwnedLiveProbingWriter(userId, id);
      upload = probed.upload;
      const writing = probed.writing || locker.heldHere(id);
      // A final upload has no writer but its assembly, which takes its time and has no offset to show until done.
      if (upload.concat !== 'final' && (writing || needsAssembly(upload))) {
        upload = await withUploadLock(
          locker,
          id,
          reply,
          () => {},
          async () => {
            const current = await uploads.access.getOwnedLive(userId, id, 'tus');
            if (!needsAssembly(current)) return current;
            await store.finish(id);
            return uploads.access.getOwnedLive(userId, id, 'tus');
          },
          Math.min(WRITER_WAIT_MS, deps.config.lockTimeoutMs),
        );
      }
    } catch (error) {
      const failure = fromTusUtils(error);
      if (!isTransient(failure)) throw failure;
      throw locked(`cannot tell the offset right now (${failure instanceof Error ? failure.message : 'unavailable'})`);
    }
    return reply
      .code(200)
      .headers({
        ...resumeCheckHeaders(upload, (partial) => deps.urlOf(request, partial)),
        'Content-Length': String(contentOfGet(upload, deps.downloads.kind)),
      })
      .send();
  });
}

/**
 * The Content-Length of a resume check: what a GET of the same URL would send as content (RFC 9110 8.6: "a server
 * MUST NOT send Content-Length in such a response unless its field value equals the decimal number of octets that
 * would have been sent in the content of a response if the same request had used the GET method"): the bytes of a
 * completed upload where GET streams them (the file store), and none otherwise (GET redirects to S3, or refuses an
 * upload that is not complete). Sent because without it Node's HTTP client cannot tell where a HEAD answer ends and
 * drops the connection after each one (nodejs/node#28438): tus-js-client on Node and `freight upload` would open a
 * new connection for every resume check.
 */
function contentOfGet(upload: FileUpload, downloads: 'redirect' | 'stream'): number {
  return isCompleted(upload.status) && downloads === 'stream' ? (upload.totalSize ?? 0) : 0;
}

function resumeCheckHeaders(upload: FileUpload, urlOf: (id: string) => string): Record<string, string> {
  const headers: Record<string, string> = {
    'Tus-Resumable': TUS_RESUMABLE,
    // "The Server MUST prevent the client and/or proxies from caching the response by adding the
    // Cache-Control: no-store header to the response."
    'Cache-Control': 'no-store',
  };
  // "The Server MUST always include the Upload-Offset header in the response for a HEAD request, even if the
  // offset is 0, or the upload is already considered completed." But for a final upload (concatenation): "The
  // response to a HEAD request for a final upload SHOULD NOT contain the Upload-Offset header unless the
  // concatenation has been successfully finished."
  if (upload.concat !== 'final' || isAssembled(upload.status)) {
    headers['Upload-Offset'] = String(upload.storedOffset ?? 0);
  }
  // "Response to HEAD request against partial or final upload MUST include the Upload-Concat header".
  if (upload.concat === 'partial') headers['Upload-Concat'] = 'partial';
  if (upload.concat === 'final') {
    headers['Upload-Concat'] = `final;${(upload.concatPartials ?? []).map(urlOf).join(' ')}`;
  }
  // "If the size of the upload is known, the Server MUST include the Upload-Length header in the response."
  // "As long as the length of the upload is not known, the Server MUST set Upload-Defer-Length: 1 in all
  // responses to HEAD requests."
  if (upload.totalSize === null) headers['Upload-Defer-Length'] = '1';
  else headers['Upload-Length'] = String(upload.totalSize);
  // "If an upload contains additional metadata, responses to HEAD requests MUST include the Upload-Metadata
  // header and its value as specified by the Client during the creation."
  if (upload.metadata && Object.keys(upload.metadata).length > 0) {
    headers['Upload-Metadata'] = Metadata.stringify(upload.metadata);
  }
  // expiration: "The Server MAY include the Upload-Expires header in the response ... for unfinished uploads".
  if (!isCompleted(upload.status) && upload.expiresAt) headers['Upload-Expires'] = upload.expiresAt.toUTCString();
  return { ...headers, ...awaitingHeaders(upload) };
}
