/**
 * The janitor's sweep of S3 multipart uploads (invariant 7: every multipart upload Freight opens is completed or
 * aborted in the end). Every multipart upload under S3_KEY_PREFIX whose key is an upload's (`<key>`, `<key>
 * .staging/part-<n>`, keys.ts) is held against that upload's row: the open upload's own and its recorded staging
 * upload are kept; those of uploads that ended or completed are aborted (this finishes a termination or an expiry
 * whose S3 call failed); those no row records (a creation undone after an outage, a writer that lost a race, an
 * upload whose row was pruned) are aborted once older than UPLOAD_EXPIRY and while no writer holds their upload, if their key is named as Freight names
 * its own. Keys that are not Freight's, and anything outside the prefix, are left alone.
 */
import { multipartKeyOwner, namedByFreight } from './keys.js';
import { multipartUploadFate } from '../uploads/fates.js';
import { isOpen } from '../lifecycle.js';
import { nowOf, type JanitorDeps, type S3Parts } from './deps.js';
import { recordAction, type JanitorReport } from './report.js';

export async function sweepMultipartUploads(
  deps: JanitorDeps,
  s3: S3Parts,
  report: JanitorReport,
  signal?: AbortSignal,
): Promise<void> {
  const { uploads, log } = deps;
  const { prefix } = s3.inventory;
  const oldBefore = nowOf(deps).getTime() - deps.expiryMs;
  for await (const page of s3.inventory.multipartUploads()) {
    signal?.throwIfAborted();
    const owners = page.flatMap((listed) => {
      const owner = listed.key.startsWith(prefix) ? multipartKeyOwner(listed.key) : undefined;
      return owner ? [{ listed, owner }] : [];
    });
    const rows = await uploads.access.findManyByStorageKey(owners.map(({ owner }) => owner.key));
    // An open upload's writer records the multipart upload it opens right after S3 answers: not yet recorded is
    // not an orphan while that writer holds the upload (however slow the database is to record it).
    const open = [...rows.values()].filter((upload) => isOpen(upload.status)).map((upload) => upload.id);
    const writing = await uploads.states.beingWritten(open);
    for (const { listed, owner } of owners) {
      const upload = rows.get(owner.key);
      if (!upload && !namedByFreight(owner.key, prefix)) continue;
      const fate = multipartUploadFate(
        upload,
        owner.stagingPart === undefined
          ? { uploadId: listed.uploadId, own: true }
          : { uploadId: listed.uploadId, own: false, stagingPart: owner.stagingPart },
      );
      const old = listed.initiated !== undefined && listed.initiated.getTime() < oldBefore;
      if (fate === 'keep' || (fate === 'abort-if-old' && (!old || (upload && writing.has(upload.id))))) continue;
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
