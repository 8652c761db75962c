/**
 * The janitor's first step: unfinished uploads past their expiry become `expired`, and what storage holds of them
 * is removed. tus uploads through the tus store's own expiry (deleteExpired: its multipart upload, staging upload
 * and staged objects, or its file); direct uploads by aborting their multipart upload through the direct path's
 * storage. Which uploads expire is the upload-state service's decision.
 */
import type { FileUpload } from '../db/schema.js';
import type { JanitorDeps } from './janitor.js';
import { recordAction, type JanitorReport } from './report.js';

export async function expireUploads(deps: JanitorDeps, report: JanitorReport): Promise<void> {
  const { uploads, tusStore, log } = deps;
  const multipart = deps.s3?.multipart;
  const tus = report.dryRun ? await uploads.expiredOpenUploads('tus') : await tusStore.expireUploads();
  note(report, tus);

  const direct = report.dryRun ? await uploads.expiredOpenUploads('direct') : await uploads.expireOpenUploads('direct');
  note(report, direct);
  if (report.dryRun || !multipart) return;
  for (const upload of direct) {
    if (!upload.s3UploadId) continue;
    try {
      await multipart.abort(upload.storageKey, upload.s3UploadId);
    } catch (error) {
      // The row is expired: the sweep of multipart uploads aborts it later in this run, or in the next one.
      report.failures++;
      log.warn(
        { err: error, uploadId: upload.id },
        'janitor: could not abort the multipart upload of an expired upload',
      );
    }
  }
}

function note(report: JanitorReport, expired: readonly FileUpload[]): void {
  for (const upload of expired) {
    report.expired[upload.protocol]++;
    recordAction(report, { kind: 'expire-upload', uploadId: upload.id, protocol: upload.protocol });
  }
}
