/** What one janitor run did (or, in a dry run, would do): counts, and the actions one by one. */
import type { UploadProtocol } from '../db/schema.js';

export type JanitorAction =
  | { kind: 'expire-upload'; uploadId: string; protocol: UploadProtocol }
  | { kind: 'abort-multipart-upload'; key: string; multipartUploadId: string; reason: string }
  | { kind: 'remove-staged-objects'; prefix: string; objects: number; reason: string }
  | { kind: 'prune-webhook-events'; events: number }
  | { kind: 'prune-uploads'; uploads: number }
  | { kind: 'resume-finals'; finals: number };

export interface JanitorReport {
  /** false: another instance was running the janitor, so this one did nothing. */
  ran: boolean;
  dryRun: boolean;
  startedAt: string;
  durationMs: number;
  /** Unfinished uploads past UPLOAD_EXPIRY, now `expired` (their multipart uploads and staged bytes removed). */
  expired: { tus: number; direct: number };
  /** Multipart uploads in the bucket that no open upload needs (no row knows them, or their upload ended), aborted. */
  orphanMultipartUploadsAborted: number;
  /** Objects under `<key>.staging/` of uploads that completed or ended (or that no row knows), removed. */
  stagedObjectsRemoved: number;
  /** Delivered webhook events older than their retention, deleted from the outbox. */
  webhookEventsPruned: number;
  /** Rows of uploads that ended more than UPLOAD_RETENTION ago, deleted (with their parts and events). */
  uploadsPruned: number;
  /** Unfinished final uploads (tus concatenation) that nobody assembled, queued for assembly on this instance. */
  finalsResumed: number;
  /** Steps that failed (S3 or the database refusing or silent): the next run tries again. */
  failures: number;
  /** What was done, one entry per upload, multipart upload or prefix (the first MAX_LISTED_ACTIONS). */
  actions: JanitorAction[];
  /** Actions done beyond those listed. */
  actionsOmitted: number;
}

/** A dry run over a bucket in a bad state could list millions: the counts stay exact, the list stops here. */
export const MAX_LISTED_ACTIONS = 1000;

export function emptyReport(dryRun: boolean, startedAt: Date): JanitorReport {
  return {
    ran: true,
    dryRun,
    startedAt: startedAt.toISOString(),
    durationMs: 0,
    expired: { tus: 0, direct: 0 },
    orphanMultipartUploadsAborted: 0,
    stagedObjectsRemoved: 0,
    webhookEventsPruned: 0,
    uploadsPruned: 0,
    finalsResumed: 0,
    failures: 0,
    actions: [],
    actionsOmitted: 0,
  };
}

export function recordAction(report: JanitorReport, action: JanitorAction): void {
  if (report.actions.length < MAX_LISTED_ACTIONS) report.actions.push(action);
  else report.actionsOmitted++;
}

/** One line for the log: "expired 2 uploads (tus 1, direct 1), aborted 3 orphan multipart uploads, …". */
export function summary(report: JanitorReport): string {
  const verb = (done: string, would: string) => (report.dryRun ? would : done);
  const parts = [
    `${verb('expired', 'would expire')} ${report.expired.tus + report.expired.direct} uploads (tus ${report.expired.tus}, direct ${report.expired.direct})`,
    `${verb('aborted', 'would abort')} ${report.orphanMultipartUploadsAborted} orphan multipart uploads`,
    `${verb('removed', 'would remove')} ${report.stagedObjectsRemoved} staged objects`,
    `${verb('pruned', 'would prune')} ${report.webhookEventsPruned} delivered webhook events`,
    `${verb('pruned', 'would prune')} ${report.uploadsPruned} ended uploads`,
  ];
  if (report.finalsResumed > 0) parts.push(`took up ${report.finalsResumed} unfinished final uploads`);
  if (report.failures > 0) parts.push(`${report.failures} steps failed (tried again next run)`);
  return parts.join(', ');
}
