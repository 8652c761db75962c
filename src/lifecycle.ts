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
 *
 *   With WEBHOOK_PRE_FINISH, "all parts verified" leads to awaiting_approval first (the object is assembled, the
 *   receiver is asked): its 2xx ──▶ completed, its 4xx ──▶ rejected (the object removed); no answer: it waits,
 *   asked again with backoff. A tus DELETE ends it (aborted) as it ends a completed upload.
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
/**
 * Assembled: every byte is stored, verified and assembled into its object; no request adds a byte (a PATCH at its
 * length is answered with it), and no multipart upload of its own is left in S3. `awaiting_approval` is assembled
 * but not completed: the pre-finish check (WEBHOOK_PRE_FINISH) has not said yes. It is neither open (it never
 * expires, however long the receiver takes, and no longer counts against USER_MAX_OPEN_UPLOADS: its bytes are
 * in) nor ended (it may still complete; the janitor neither prunes its row nor removes its object).
 */
export const ASSEMBLED = ['awaiting_approval', 'completed'] as const satisfies readonly UploadStatus[];
/**
 * A final upload in one of these holds its partials: no other final may name them meanwhile (one awaiting
 * approval may still complete).
 */
export const HOLDING_PARTIALS = [...OPEN, ...ASSEMBLED] as const satisfies readonly UploadStatus[];

export const isOpen = (status: UploadStatus): boolean => (OPEN as readonly UploadStatus[]).includes(status);
export const hasEnded = (status: UploadStatus): boolean => (ENDED as readonly UploadStatus[]).includes(status);
export const isCompleted = (status: UploadStatus): boolean => status === 'completed';
/** Terminated by its owner (or refused by the server): every later request is 410, a second DELETE too. */
export const wasTerminated = (status: UploadStatus): boolean => status === 'aborted';
export const isAssembled = (status: UploadStatus): boolean => (ASSEMBLED as readonly UploadStatus[]).includes(status);

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
  /**
   * tus termination of a completed upload ("both, completed and unfinished, uploads"), or of one awaiting
   * approval: its object goes.
   */
  terminate: { from: ASSEMBLED, to: 'aborted', event: 'upload.aborted', counted: 'aborted' },
  /** Idle past its expiry, and no request holds it. */
  expire: { from: OPEN, to: 'expired', event: 'upload.expired', counted: 'expired' },
  /** Storage no longer holds its bytes. */
  lose: { from: OPEN, to: 'lost', event: 'upload.failed', counted: 'failed' },
  /** Its bytes are not the SHA-256 its client announced. */
  reject: { from: OPEN, to: 'rejected', event: 'upload.failed', counted: 'failed' },
  /**
   * WEBHOOK_PRE_FINISH: assembled and verified, the receiver is asked now (and again with backoff until it
   * answers). Reports nothing: the pre-finish request is the receiver's news.
   */
  awaitApproval: { from: OPEN, to: 'awaiting_approval' },
  /** The pre-finish check answered 2xx. */
  approve: { from: ['awaiting_approval'], to: 'completed', event: 'upload.completed', counted: 'completed' },
  /** The pre-finish check answered 4xx: its message is kept, the object removed. */
  refuse: { from: ['awaiting_approval'], to: 'rejected', event: 'upload.failed', counted: 'failed' },
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
