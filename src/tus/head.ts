/**
 * The resume check (HEAD), answered here for every tus upload, never by @tus/server's HeadHandler: the offset is
 * the one PostgreSQL records, which is never ahead of what storage holds. No lock and no storage request, except
 * for an upload whose bytes are all stored but which is not yet assembled (S3 failed at that moment): it is
 * assembled now, under its lock.
 *
 * A resume check must never make a client start over because a dependency hiccupped: tus-js-client (and so
 * Uppy) answers any failed HEAD other than 423 by creating a new upload from byte 0. So when the database or
 * storage cannot serve the check, the answer is 423 Locked with Retry-After, which both retry on their schedule.
 */
import type { Locker } from '@tus/server';
import { Metadata, TUS_RESUMABLE } from '@tus/utils';
import type { FileUpload } from '../db/schema.js';
import { isTransient, locked } from '../errors.js';
import type { UploadService } from '../uploads/service.js';
import type { FreightStore } from './upload-record.js';

export interface ResumeCheckDeps {
  uploads: UploadService;
  store: FreightStore;
  locker: Locker;
  /** The URL of an upload (the partials named by a final upload's Upload-Concat). */
  urlOf(id: string): string;
}

const needsAssembly = (upload: FileUpload): boolean =>
  upload.concat !== 'final' &&
  upload.status !== 'completed' &&
  upload.totalSize !== null &&
  upload.storedOffset === upload.totalSize;

/** The HEAD answer's headers for the caller's upload; 404/410 as for any request, 423 when it cannot tell now. */
export async function resumeCheck(
  deps: ResumeCheckDeps,
  userId: string,
  id: string,
  signal: AbortSignal,
): Promise<Record<string, string>> {
  try {
    let upload = await deps.uploads.getOwnedLive(userId, id, 'tus');
    if (needsAssembly(upload)) {
      const lock = deps.locker.newLock(id);
      await lock.lock(signal, () => {});
      try {
        await deps.store.finish(id);
      } finally {
        await lock.unlock();
      }
      upload = await deps.uploads.getOwnedLive(userId, id, 'tus');
    }
    return resumeCheckHeaders(upload, deps.urlOf);
  } catch (error) {
    if (!isTransient(error)) throw error;
    throw locked(`cannot tell the offset right now (${error instanceof Error ? error.message : 'unavailable'})`);
  }
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
  if (upload.concat !== 'final' || upload.status === 'completed')
    headers['Upload-Offset'] = String(upload.storedOffset ?? 0);
  // "Response to HEAD request against partial or final upload MUST include the Upload-Concat header".
  if (upload.concat === 'partial') headers['Upload-Concat'] = 'partial';
  if (upload.concat === 'final')
    headers['Upload-Concat'] = `final;${(upload.concatPartials ?? []).map(urlOf).join(' ')}`;
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
  if (upload.status !== 'completed' && upload.expiresAt) headers['Upload-Expires'] = upload.expiresAt.toUTCString();
  return headers;
}
