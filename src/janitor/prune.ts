/**
 * The janitor's pruning: the rows of uploads that ended without completing (aborted, expired, lost, rejected) are
 * deleted UPLOAD_RETENTION after they ended, with their part rows and webhook events (those still to be delivered
 * stay: their payload carries the upload). Completed uploads are kept: they are their owners' files. Ended rows
 * count against USER_MAX_UPLOADS until they are pruned.
 *
 * Before a row goes, whatever S3 may still hold under its key is removed (an object a completion made after its
 * upload ended, if removing it failed then): without the row nothing would find it again. Multipart uploads and
 * staged objects need no such care: the sweeps remove those no row knows.
 */
import { nowOf, type JanitorDeps } from './deps.js';
import { recordAction, type JanitorReport } from './report.js';

/** Rows deleted per statement (and object keys removed per DeleteObjects request). */
const PRUNE_BATCH = 500;

export async function pruneEndedUploads(deps: JanitorDeps, report: JanitorReport, signal?: AbortSignal): Promise<void> {
  const { uploads, log } = deps;
  const before = new Date(nowOf(deps).getTime() - deps.retentionMs);
  if (report.dryRun) {
    report.uploadsPruned = await uploads.states.countPrunableUploads(before);
    if (report.uploadsPruned > 0) recordAction(report, { kind: 'prune-uploads', uploads: report.uploadsPruned });
    return;
  }
  try {
    for (;;) {
      signal?.throwIfAborted();
      const batch = await uploads.states.prunableUploads(before, PRUNE_BATCH);
      if (batch.length === 0) break;
      await deps.s3?.objects.deleteObjects(batch.map((upload) => upload.storageKey));
      const pruned = await uploads.states.pruneEndedUploads(
        batch.map((upload) => upload.id),
        before,
      );
      report.uploadsPruned += pruned;
      // Rows that changed meanwhile stay (and are not listed again): stop rather than look at them again.
      if (batch.length < PRUNE_BATCH || pruned === 0) break;
    }
  } catch (error) {
    if (signal?.aborted) throw error;
    report.failures++;
    log.warn({ err: error }, 'janitor: could not prune ended uploads; the next run goes on');
  }
  if (report.uploadsPruned > 0) recordAction(report, { kind: 'prune-uploads', uploads: report.uploadsPruned });
}
