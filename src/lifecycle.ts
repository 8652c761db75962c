/**
 * The upload lifecycle, as data: every status, the groups callers ask about, and every transition with the
 * statuses it may start from, the webhook event it writes (in the same statement as the change, see
 * UploadRepository.transition) and the metric it counts. The repository builds its guarded statements from this
 * table (`… where status in (<from>)`); nothing else names a status group. Imports nothing: the schema's enums,
 * the repository and every caller read it.
 *
 *   pending ──first bytes──▶ uploading ──all parts verified──▶ completed ──tus DELETE──▶ aborted
 *      │  ▲                     │   ▲
 *      │  └──── progress ───────┤   │ progress again
 *      │                        ▼   │
 *      └──────────────────────▶ failed
 *   any open status ──▶ aborted (DELETE) / expired (idle past UPLOAD_EXPIRY) / lost (storage lost its bytes) /
 *                       rejected (not the announced digest) / given_up (a final's assembly failed for good)
 */

export const UPLOAD_STATUSES = [
  'pending',
  'uploading',
  'completed',
  'failed',
  'aborted',
  'expired',
  'lost',
  'rejected',
  'given_up',
  'awaiting_approval',
] as const;
export type UploadStatus = (typeof UPLOAD_STATUSES)[number];

/** What the webhook outbox reports: one event per state change a receiver hears of. */
export const UPLOAD_EVENTS = [
  'upload.created',
  'upload.completed',
  'upload.failed',
  'upload.aborted',
  'upload.expired',
  'upload.progress',
] as const;
export type UploadEvent = (typeof UPLOAD_EVENTS)[number];

/** What the metrics count (freight_uploads_<counted>_total). */
export type CountedChange = 'created' | 'completed' | 'failed' | 'aborted' | 'expired';

/**
 * Open: the upload can still receive bytes, complete, fail, be aborted or expire; it counts against
 * USER_MAX_OPEN_UPLOADS and the janitor keeps what storage holds of it.
 */
export const OPEN = ['pending', 'uploading', 'failed'] as const satisfies readonly UploadStatus[];
/**
 * Ended: it will never receive a byte or complete; a request that would continue it is 410 Gone, storage may drop
 * its bytes, and the janitor prunes its row after UPLOAD_RETENTION.
 */
export const ENDED = ['aborted', 'expired', 'lost', 'rejected', 'given_up'] as const satisfies readonly UploadStatus[];
/** A final upload in one of these holds its partials: no other final may name them meanwhile. */
export const HOLDING_PARTIALS = [...OPEN, 'completed'] as const satisfies readonly UploadStatus[];

export const isOpen = (status: UploadStatus): boolean => (OPEN as readonly UploadStatus[]).includes(status);
export const hasEnded = (status: UploadStatus): boolean => (ENDED as readonly UploadStatus[]).includes(status);
export const isCompleted = (status: UploadStatus): boolean => status === 'completed';
/** Terminated by its owner (or refused by the server): every later request is 410, a second DELETE too. */
export const wasTerminated = (status: UploadStatus): boolean => status === 'aborted';

/** Why a request that would continue an ended upload gets 410: what its client is told. */
export function goneReason(status: UploadStatus, error: string | null): string | undefined {
  switch (status) {
    case 'aborted':
      return 'the upload was terminated';
    case 'expired':
      return 'the upload expired';
    case 'lost':
    case 'rejected':
    case 'given_up':
      return `the upload cannot be resumed: ${error ?? 'storage lost its bytes'}`;
    default:
      return undefined;
  }
}

export interface Transition {
  from: readonly UploadStatus[];
  to: UploadStatus;
  /** Written to the webhook outbox in the same statement, when the status changes (not on failed → failed). */
  event?: UploadEvent;
  /** Counted in the metrics, when the status changes. */
  counted?: CountedChange;
}

/** Every change of an upload's status there is. */
export const TRANSITIONS = {
  /** Bytes were stored (the first ones, or the first since an attempt failed: back to uploading). Reports nothing. */
  progress: { from: OPEN, to: 'uploading' },
  /** An attempt failed (storage, a parts mismatch, staged bytes lost): the reason is kept; it stays resumable. */
  fail: { from: OPEN, to: 'failed', event: 'upload.failed', counted: 'failed' },
  /** Every byte stored, verified, assembled. */
  complete: { from: OPEN, to: 'completed', event: 'upload.completed', counted: 'completed' },
  /** The owner's DELETE, or the server's refusal of an upload that can never complete. */
  abort: { from: OPEN, to: 'aborted', event: 'upload.aborted', counted: 'aborted' },
  /** tus termination of a completed upload ("both, completed and unfinished, uploads"): its object goes. */
  terminate: { from: ['completed'], to: 'aborted', event: 'upload.aborted', counted: 'aborted' },
  /** Idle past its expiry, and no request holds it. */
  expire: { from: OPEN, to: 'expired', event: 'upload.expired', counted: 'expired' },
  /** Storage no longer holds its bytes. */
  lose: { from: OPEN, to: 'lost', event: 'upload.failed', counted: 'failed' },
  /** Its bytes are not the SHA-256 its client announced. */
  reject: { from: OPEN, to: 'rejected', event: 'upload.failed', counted: 'failed' },
  /** A final upload whose assembly failed CONCAT_MAX_ATTEMPTS times. */
  giveUp: { from: OPEN, to: 'given_up', event: 'upload.failed', counted: 'failed' },
} as const satisfies Record<string, Transition>;

export type TransitionName = keyof typeof TRANSITIONS;

/**
 * A final upload's assembly attempt failed, after `attemptsBefore` failed ones: how many have failed now, and
 * whether it is given up (TRANSITIONS.giveUp): at `maxAttempts` (CONCAT_MAX_ATTEMPTS), or at once when the failure
 * is `permanent` (a partial upload is gone: no attempt can succeed). Otherwise it is `failed` (TRANSITIONS.fail)
 * and tried again.
 */
export function afterFailedAssembly(
  attemptsBefore: number,
  maxAttempts: number,
  permanent = false,
): { attempts: number; status: 'failed' | 'given_up' } {
  const attempts = attemptsBefore + 1;
  return { attempts, status: permanent || attempts >= maxAttempts ? 'given_up' : 'failed' };
}
