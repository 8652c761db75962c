/**
 * Upload ids: UUIDs, the primary key of file_uploads and the object key of both paths. An id comes from a URL, a
 * query or a key in the bucket; anything that is not a UUID names no upload (and must not reach a uuid column).
 * This module imports nothing: the logger, the repository, the stores and the janitor all lean on it.
 */

/** The pattern of an upload id, for building larger patterns (a staging key, a URL path). */
export const UPLOAD_ID_PATTERN = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

const UPLOAD_ID = new RegExp(`^${UPLOAD_ID_PATTERN}$`, 'i');

export const isUploadId = (id: string): boolean => UPLOAD_ID.test(id);
