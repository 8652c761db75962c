/**
 * The janitor's sweep of S3 multipart uploads (invariant 7: every multipart upload Freight opens is completed or
 * aborted in the end). Every multipart upload in the bucket under one of Freight's keys (`<id>`, `<id>.staging/
 * part-<n>`) is held against its upload's row: the open upload's own and its recorded staging upload are kept;
 * those of uploads that ended or completed are aborted (this finishes a termination or an expiry whose S3 call
 * failed); those no row records (a creation undone after an outage, a writer that lost a race, an upload whose
 * row was pruned) are aborted once older than UPLOAD_EXPIRY. Keys that are not Freight's are left alone.
 */
import { multipartUploadFate } from '../uploads/fates.js';
import { multipartKeyOwner } from '../tus/s3/layout.js';
import { nowOf, type JanitorDeps, type S3Parts } from './deps.js';
import { recordAction, type JanitorReport } from './report.js';

export async function sweepMultipartUploads(
  deps: JanitorDeps,
  s3: S3Parts,
  report: JanitorReport,
  signal?: AbortSignal,
): Promise<void> {
  const { uploads, log } = deps;
  const oldBefore = nowOf(deps).getTime() - deps.expiryMs;
  for await (const page of s3.inventory.multipartUploads()) {
    signal?.throwIfAborted();
    const owners = page.map((listed) => ({ listed, owner: multipartKeyOwner(listed.key) }));
    const rows = await uploads.access.findManyForStorage(owners.flatMap(({ owner }) => (owner ? [owner.id] : [])));
    for (const { listed, owner } of owners) {
      if (!owner) continue;
      const upload = rows.get(owner.id);
      const fate = multipartUploadFate(
        upload,
        owner.stagingPart === undefined
          ? { uploadId: listed.uploadId, own: true }
          : { uploadId: listed.uploadId, own: false, stagingPart: owner.stagingPart },
      );
      const old = listed.initiated !== undefined && listed.initiated.getTime() < oldBefore;
      if (fate === 'keep' || (fate === 'abort-if-old' && !old)) continue;
      const reason = upload
        ? `the upload is ${upload.status}${fate === 'abort-if-old' ? ' and does not record it' : ''}`
        : 'no upload records it';
      try {
        if (!report.dryRun) await s3.multipart.abort(listed.key, listed.uploadId);
        report.orphanMultipartUploadsAborted++;
        recordAction(report, {
          kind: 'abort-multipart-upload',
          key: listed.key,
          multipartUploadId: listed.uploadId,
          reason,
        });
      } catch (error) {
        report.failures++;
        log.warn({ err: error, key: listed.key }, 'janitor: could not abort a multipart upload');
      }
    }
  }
}
