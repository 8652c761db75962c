/**
 * The janitor: what no request is left to do. Unfinished uploads idle past UPLOAD_EXPIRY are expired and their
 * storage removed; multipart uploads and staged objects in the bucket that no open upload needs are removed (an
 * expiry or termination whose S3 call failed, a creation undone after an outage, a writer that lost a race);
 * rows of uploads that ended are pruned after UPLOAD_RETENTION (completed ones are kept); final uploads (tus
 * concatenation) left unassembled by a process that died are taken up again.
 *
 * One run at a time across all instances: the run holds a PostgreSQL advisory lock, and a run that finds it
 * held does nothing (`ran: false`). The server runs it every JANITOR_INTERVAL (schedule.ts); `freight cleanup`
 * runs it once (openJanitorDeps in deps.ts builds what it needs from the configuration).
 */
import { type JanitorDeps, nowOf } from './deps.js';
import { expireUploads } from './expiry.js';
import { pruneEndedUploads } from './prune.js';
import { sweepMultipartUploads } from './multipart-sweep.js';
import { emptyReport, recordAction, summary, type JanitorReport } from './report.js';
import { sweepStagedObjects } from './staged-sweep.js';

/** Unfinished final uploads nobody assembles (their retry was lost with a process): queued for assembly here. */
async function resumeFinals(
  finals: NonNullable<JanitorDeps['finals']>,
  deps: JanitorDeps,
  report: JanitorReport,
): Promise<void> {
  try {
    report.finalsResumed = await finals.resumeIdle();
    if (report.finalsResumed > 0) recordAction(report, { kind: 'resume-finals', finals: report.finalsResumed });
  } catch (error) {
    report.failures++;
    deps.log.error({ err: error }, 'janitor: could not take up unfinished final uploads');
  }
}

/** The key of the janitor's advisory lock (Database.exclusive). */
export const JANITOR_LOCK_KEY = 0x4a414e49; // "JANI"

export interface JanitorOptions {
  /** Report what would be done, changing nothing (in the database or in S3). */
  dryRun?: boolean;
  /** Stops the run between pages and steps (the server shutting down). */
  signal?: AbortSignal;
}

/** Delivered webhook events are kept this long (to look into a receiver's complaint), then pruned. */
export const DELIVERED_EVENTS_KEPT_MS = 7 * 86_400_000;

/**
 * One janitor run (or, with `dryRun`, what one would do). Every call it makes is bounded in time (S3 by the
 * client's timeouts, the database by its deadlines); a step that fails is counted in `failures`, logged, and
 * tried again by the next run. Throws only if the database cannot be reached at all.
 */
export async function runJanitor(deps: JanitorDeps, options: JanitorOptions = {}): Promise<JanitorReport> {
  const dryRun = options.dryRun ?? false;
  const startedAt = nowOf(deps);
  const clock = performance.now();
  const outcome = await deps.exclusive(async () => {
    const report = emptyReport(dryRun, startedAt);
    await expireUploads(deps, report);
    if (deps.s3) {
      options.signal?.throwIfAborted();
      await sweepMultipartUploads(deps, deps.s3, report, options.signal);
      await sweepStagedObjects(deps, deps.s3, report, options.signal);
    }
    await pruneEndedUploads(deps, report, options.signal);
    if (deps.finals && !dryRun) await resumeFinals(deps.finals, deps, report);
    if (deps.outbox) {
      const pruned = await deps.outbox.pruneDelivered(
        new Date(nowOf(deps).getTime() - DELIVERED_EVENTS_KEPT_MS),
        dryRun,
      );
      report.webhookEventsPruned = pruned;
      if (pruned > 0) recordAction(report, { kind: 'prune-webhook-events', events: pruned });
    }
    return report;
  });
  if (!outcome.ran) {
    deps.log.debug('janitor: another instance is running it; skipped');
    return { ...emptyReport(dryRun, startedAt), ran: false };
  }
  const report = { ...outcome.value, durationMs: Math.round(performance.now() - clock) };
  const { actions: _listed, ...counts } = report;
  deps.log.info({ janitor: counts }, `janitor${dryRun ? ' (dry run)' : ''}: ${summary(report)}`);
  return report;
}
