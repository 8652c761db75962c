/**
 * The one way bytes enter a tus upload, for PATCH and for a creation that brings its first bytes (POST,
 * creation-with-upload): under the upload's lock, within its length, checked against Upload-Checksum, ended when
 * the client stalls or another request wants the upload (what arrived is kept), the running SHA-256 fed on the way
 * (by the stores). A storage failure is kept on the upload's record (the API shows it); it stays resumable.
 */
import type { Locker } from '@tus/utils';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FileUpload } from '../db/schema.js';
import { failureReason, locked, payloadTooLarge, storageProblem } from '../errors.js';
import type { Metrics } from '../ops/metrics.js';
import type { UploadService } from '../uploads/service.js';
import { BodyStalled } from './body.js';
import { parseUploadChecksum } from './checksum.js';
import { fromTusUtils } from './reply.js';
import type { FreightStore } from './upload-record.js';

export interface BodyWriterDeps {
  store: FreightStore;
  uploads: UploadService;
  metrics: Metrics;
  maxUploadSize: number;
}

export const header = (request: FastifyRequest, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
};

/**
 * Runs `work` holding the upload's lock (invariant 3: one writer per upload, across instances). Waiting ends when
 * the client goes away, after `waitMs` if given, and after LOCK_TIMEOUT in any case (423, which clients retry).
 * `onRelease` is called when another request wants the upload while `work` runs.
 */
export async function withUploadLock<T>(
  locker: Locker,
  id: string,
  reply: FastifyReply,
  onRelease: () => void,
  work: () => Promise<T>,
  waitMs?: number,
): Promise<T> {
  const clientGone = new AbortController();
  const abort = () => clientGone.abort();
  // The response closes early only when its connection does: the client is gone, nobody waits for the answer.
  reply.raw.once('close', abort);
  const lock = locker.newLock(id);
  const signal =
    waitMs === undefined ? clientGone.signal : AbortSignal.any([clientGone.signal, AbortSignal.timeout(waitMs)]);
  try {
    await lock.lock(signal, onRelease);
  } catch (error) {
    reply.raw.off('close', abort);
    throw fromTusUtils(error);
  }
  try {
    return await work();
  } finally {
    reply.raw.off('close', abort);
    await lock.unlock();
  }
}

/**
 * Writes the request body into `upload` (its row as read under the lock) from its stored offset, and returns the
 * offset now stored. `stop` aborts when another request wants the upload. The caller holds the lock.
 */
export async function writeBody(
  deps: BodyWriterDeps,
  request: FastifyRequest,
  upload: FileUpload,
  stop: AbortSignal,
): Promise<number> {
  const offset = upload.storedOffset ?? 0;
  const limit = (upload.totalSize ?? deps.maxUploadSize) - offset;
  const contentLength = header(request, 'content-length');
  // "If the length of the upload exceeds the maximum, which MAY be specified using the Tus-Max-Size header, the
  // Server MUST respond with the 413 Request Entity Too Large status"; a body past the declared length is the same.
  if (contentLength !== undefined && Number(contentLength) > limit) {
    throw payloadTooLarge(
      `a body of ${contentLength} bytes goes past the upload's length (at most ${limit} more bytes)`,
    );
  }
  const checksum = parseUploadChecksum(header(request, 'upload-checksum'));
  deps.metrics.tusWritesInProgress.inc();
  try {
    const end = await deps.store
      .write(request.raw, upload.id, offset, { stop, limit, checksum, record: upload })
      .catch((error: unknown) => {
        // A stalled body was ended with what arrived stored: the request succeeded up to there.
        if (error instanceof BodyStalled) {
          request.log.info({ offset: error.offset }, 'request body stalled; answered with what was stored');
          return error.offset;
        }
        throw error;
      });
    // Another request took the upload over (a client that reconnected, or a second client): what arrived is
    // stored, but this request lost the upload. 423, which tus clients retry: they ask for the offset and go on.
    if (stop.aborted && !request.raw.complete) {
      throw locked(
        `another request took this upload over; the ${end - offset} bytes that arrived are stored; ask for the offset (HEAD) and resume`,
      );
    }
    return end;
  } catch (error) {
    const failure = fromTusUtils(error);
    if (storageProblem(failure))
      await deps.uploads.states.markFailed(upload.id, failureReason(failure)).catch(() => {});
    throw failure;
  } finally {
    deps.metrics.tusWritesInProgress.dec();
  }
}
