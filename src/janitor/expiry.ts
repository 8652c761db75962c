/**
 * The janitor's first step: unfinished uploads idle past their expiry become `expired`, and what storage holds of
 * them is removed. tus uploads through the tus store's own expiry (deleteExpired: its multipart upload, staging
 * upload and staged objects, or its file); direct uploads by aborting their multipart upload through the direct
 * path's storage. Which uploads expire is the upload-state service's decision: never one a writer holds or a
 * request is completing.
 *
 * A direct upload's bytes go to S3 without passing here, so before one expires S3 is asked: parts stored since
 * they were last counted are progress (its client is sending with URLs signed earlier), and it lives on.
 */
import type { FileUpload } from '../db/schema.js';
import { sumOfSizes } from '../uploads/parts.js';
import type { JanitorDeps } from './deps.js';
import { recordAction, type JanitorReport } from './report.js';

export async function expireUploads(deps: JanitorDeps, report: JanitorReport): Promise<void> {
  const { uploads, tusStore } = deps;
  const tus = report.dryRun ? await uploads.states.expiredOpenUploads('tus') : await tusStore.expireUploads();
  note(report, tus);
  const direct = await uploads.states.expiredOpenUploads('direct');
  if (report.dryRun) return note(report, direct);
  for (const upload of direct) await expireDirectUpload(deps, report, upload);
}

async function expireDirectUpload(deps: JanitorDeps, report: JanitorReport, upload: FileUpload): Promise<void> {
  const { uploads, log } = deps;
  const multipart = deps.s3?.multipart;
  try {
    if (multipart && upload.s3UploadId) {
      const parts = await multipart.listParts(upload.storageKey, upload.s3UploadId);
      if (parts && sumOfSizes(parts) > upload.bytesReceived) {
        await uploads.ledger.recordProgress(upload.id, sumOfSizes(parts));
        return;
      }
    }
    const [expired] = await uploads.states.expireIdle([upload.id]);
    if (!expired) return;
    note(report, [expired]);
    if (multipart && expired.s3UploadId) await multipart.abort(expired.storageKey, expired.s3UploadId);
  } catch (error) {
    // Not expired (S3 could not say whether it made progress), or expired with its multipart upload left: the
    // next run looks again, and the sweep of multipart uploads aborts those of ended uploads.
    report.failures++;
    log.warn({ err: error, uploadId: upload.id }, 'janitor: could not expire a direct upload');
  }
}

function note(report: JanitorReport, expired: readonly FileUpload[]): void {
  for (const upload of expired) {
    report.expired[upload.protocol]++;
    recordAction(report, { kind: 'expire-upload', uploadId: upload.id, protocol: upload.protocol });
  }
}
