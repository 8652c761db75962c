/**
 * The gate before completion (WEBHOOK_PRE_FINISH): an upload whose every byte is stored, verified and assembled
 * into its object is `awaiting_approval` until the receiver says yes (2xx: completed) or no (4xx: rejected, its
 * object removed, its client told the receiver's message). No answer within WEBHOOK_TIMEOUT, or a 5xx: it waits,
 * and is asked again with backoff (approval-loop.ts, on every instance) until the receiver answers.
 *
 * The upload is recorded as awaiting before the receiver is asked: a crash while asking leaves it waiting (asked
 * again), never open with its multipart upload already consumed, nor completed without a yes.
 */
import { uploadRejected } from '../errors.js';
import type { FileUpload } from '../db/schema.js';

export type Verdict =
  | { kind: 'approved' }
  | { kind: 'rejected'; status: number; message: string }
  | { kind: 'unanswered'; reason: string };

/** Asks the receiver about an assembled upload (src/webhooks/pre-finish.ts). */
export interface PreFinishCheck {
  /** Bounded by `timeoutMs`; never throws: a failure to ask is `unanswered`. */
  ask(upload: FileUpload): Promise<Verdict>;
  /** WEBHOOK_TIMEOUT. */
  timeoutMs: number;
}

/** Past the ask's own bound: an ask cut short by a crash is made again after its lease (timeout + this). */
export const ASK_LEASE_MARGIN_MS = 30_000;

/** The backoff between asks: from 5 s, about doubling (as long again as the upload has waited), at most an hour. */
export const ASK_AGAIN = { baseMs: 5_000, capMs: 3_600_000 } as const;

/**
 * The wait before the next ask of an upload that has waited `waitedMs` so far: as long again (so the waits double:
 * 5 s, 10 s, 20 s …), within [5 s, 1 h], its second half random (instances and uploads that started waiting
 * together do not ask together). No attempt counter is needed: the upload's updated_at says when it began to wait.
 */
export function nextAskDelay(waitedMs: number, random: () => number = Math.random): number {
  const span = Math.min(ASK_AGAIN.capMs, Math.max(ASK_AGAIN.baseMs, waitedMs));
  return Math.round(span / 2 + (random() * span) / 2);
}

/** What a decision records (the upload-state service's guarded changes). */
export interface ApprovalRecords {
  /** awaiting_approval → completed; undefined if it no longer awaits (terminated meanwhile, or decided). */
  approve(id: string): Promise<FileUpload | undefined>;
  /** awaiting_approval → rejected with `reason`; undefined if it no longer awaits. */
  refuse(id: string, reason: string): Promise<FileUpload | undefined>;
  /** Still awaiting: asked again from `at`, `reason` shown meanwhile. */
  askAgainAt(id: string, at: Date, reason: string): Promise<boolean>;
  findForStorage(id: string): Promise<FileUpload | undefined>;
}

export interface Decision {
  records: ApprovalRecords;
  check: PreFinishCheck;
  now: () => Date;
  random?: () => number;
}

/** Why a rejected upload is gone, as HEAD's 410 and the API say it (the client's PATCH got the message itself). */
export const refusalReason = (message: string): string => `the pre-finish check refused it: ${message}`;

/**
 * Asks about `upload` (awaiting approval, leased to this caller) and records the answer. Returns the upload as it
 * is then (completed, or still awaiting); a refusal throws ERR_UPLOAD_REJECTED with the receiver's status and
 * message, once the object is removed (`removeObject`; if that fails, the refusal is not recorded yet: the upload
 * stays awaiting, is asked again, and the removal is tried again).
 */
export async function decide(
  { records, check, now, random }: Decision,
  upload: FileUpload,
  removeObject: () => Promise<void>,
): Promise<FileUpload> {
  const verdict = await check.ask(upload);
  if (verdict.kind === 'approved') {
    return (await records.approve(upload.id)) ?? (await records.findForStorage(upload.id)) ?? upload;
  }
  if (verdict.kind === 'rejected') {
    try {
      await removeObject();
    } catch (error) {
      await records.askAgainAt(
        upload.id,
        new Date(now().getTime() + ASK_AGAIN.baseMs),
        `refused by the pre-finish check (${verdict.message}), but its object could not be removed yet: ${(error as Error).message}`,
      );
      throw error;
    }
    await records.refuse(upload.id, refusalReason(verdict.message));
    throw uploadRejected(verdict.status, verdict.message);
  }
  const at = now();
  const next = new Date(at.getTime() + nextAskDelay(at.getTime() - upload.updatedAt.getTime(), random));
  const reason = `awaiting approval: the pre-finish check ${verdict.reason}; asked again at ${next.toISOString()}`;
  await records.askAgainAt(upload.id, next, reason);
  return { ...upload, lockedUntil: next, error: reason };
}
