/**
 * What the janitor does with what it finds in the bucket, decided from the upload's row alone: the lifecycle says
 * which uploads still need their multipart uploads and staged objects.
 */
import type { FileUpload } from '../db/schema.js';
import { isAssembled, isOpen } from '../lifecycle.js';

/**
 * What becomes of an S3 multipart upload found in the bucket under an upload's key (`upload` undefined: no row
 * knows that upload). `own`: the upload's own multipart upload; otherwise the staging upload of part
 * `stagingPart` (tus). An open upload keeps the one it recorded; an upload that ended (or completed) needs none
 * of them any more: abort now. Anything else may be on its way to being recorded (a row learns an UploadId only
 * once S3 answered, a staging upload once its first segment is stored): abort once older than the expiry.
 */
export function multipartUploadFate(
  upload: FileUpload | undefined,
  found: { uploadId: string } & ({ own: true } | { own: false; stagingPart: number }),
): 'keep' | 'abort' | 'abort-if-old' {
  if (!upload) return 'abort-if-old';
  const recorded = found.own
    ? upload.s3UploadId === found.uploadId
    : upload.staging?.uploadId === found.uploadId && upload.staging.partNumber === found.stagingPart;
  if (isOpen(upload.status)) return recorded ? 'keep' : 'abort-if-old';
  // A completed (or awaiting approval) upload's own multipart upload is consumed by its completion: still listed, it is S3's listing
  // lagging behind (or a bucket in trouble), not a leftover to abort at once.
  if (isAssembled(upload.status) && recorded && found.own) return 'abort-if-old';
  return 'abort';
}

/**
 * What becomes of the staged objects (`<key>.staging/`) of an upload: kept while it is open (they are bytes of
 * the part under way), removed once it completed or ended, and, when no row knows the upload, removed once
 * older than the expiry.
 */
export function stagedObjectsFate(upload: FileUpload | undefined): 'keep' | 'remove' | 'remove-if-old' {
  if (!upload) return 'remove-if-old';
  return isOpen(upload.status) ? 'keep' : 'remove';
}
