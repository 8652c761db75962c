/**
 * Which upload a key the janitor finds in the bucket belongs to. Uploads are found by their key (storage_key,
 * unique), not by a name pattern: a pre-create hook may name any key under S3_KEY_PREFIX. Every key S3 holds for
 * an upload is its key, or, for tus staging (src/tus/s3/layout.ts), under `<key>.staging/`: the staging
 * multipart upload of part n is `<key>.staging/part-<n>`, staged objects are anything under that "directory". No
 * upload's key holds `.staging/` (object-shape.ts refuses it), so the first one splits a key unambiguously.
 *
 * A key no row records is Freight's only if it is named as Freight names keys of its own (the prefix, then an
 * upload id): anything else under the prefix is left alone, whoever put it there.
 */
import { UPLOAD_ID_PATTERN } from '../db/ids.js';

const STAGING = '.staging/';
const STAGING_PART = /^part-([1-9][0-9]{0,4})$/;
const UPLOAD_ID = new RegExp(`^${UPLOAD_ID_PATTERN}$`, 'i');

/** A multipart upload's key: an upload's own (`<key>`), or the staging upload of its part n; else undefined. */
export function multipartKeyOwner(key: string): { key: string; stagingPart?: number } | undefined {
  const at = key.indexOf(STAGING);
  if (at === -1) return { key };
  const part = STAGING_PART.exec(key.slice(at + STAGING.length));
  return part ? { key: key.slice(0, at), stagingPart: Number(part[1]) } : undefined;
}

/** The key of the upload whose staged bytes an object is (`<key>.staging/…`); undefined for any other object. */
export function stagedObjectOwner(key: string): string | undefined {
  const at = key.indexOf(STAGING);
  return at > 0 ? key.slice(0, at) : undefined;
}

/** Whether `key` is named as Freight names an upload's key when no hook names it: S3_KEY_PREFIX, then its id. */
export function namedByFreight(key: string, prefix: string): boolean {
  return key.startsWith(prefix) && UPLOAD_ID.test(key.slice(prefix.length));
}
