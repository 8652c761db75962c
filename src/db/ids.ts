/**
 * Upload ids: UUIDs, the primary key of file_uploads and the object key of both paths. An id comes from a URL, a
 * query or a key in the bucket; anything that is not a UUID names no upload (and must not reach a uuid column).
 * This module imports nothing of Freight's: the logger, the repository, the stores and the locks all lean on it.
 */
import { createHash } from 'node:crypto';

/** The pattern of an upload id, for building larger patterns (a staging key, a URL path). */
export const UPLOAD_ID_PATTERN = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

const UPLOAD_ID = new RegExp(`^${UPLOAD_ID_PATTERN}$`, 'i');

export const isUploadId = (id: string): boolean => UPLOAD_ID.test(id);

/**
 * The PostgreSQL advisory lock key of an upload (tus's lock across instances, src/tus/lockers/postgres-locker.ts):
 * the first 64 bits of its UUID, or of the SHA-256 of any other id. Freight's migrations lock key 0x46524549 in
 * the same bigint key space; an upload would have to start 00000000-4652-4549.
 */
export function uploadLockKey(id: string): bigint {
  const bytes = isUploadId(id)
    ? Buffer.from(id.replaceAll('-', '').slice(0, 16), 'hex')
    : createHash('sha256').update(id).digest();
  return bytes.readBigInt64BE(0);
}
