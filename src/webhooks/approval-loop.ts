/**
 * Asks again about uploads awaiting approval (WEBHOOK_PRE_FINISH) whose next ask is due. Every instance runs one
 * from start to close: it claims due uploads (UploadService.claimAwaitingApproval: `for update skip locked` and a
 * lease, so instances share the work and never ask about one upload at once), asks about each (bounded by
 * WEBHOOK_TIMEOUT) and records the answer; no answer schedules the next ask with backoff (approval.ts). It never
 * touches a request.
 */
import type { FastifyBaseLogger } from 'fastify';
import { FreightError } from '../errors.js';
import type { FileUpload } from '../db/schema.js';
import type { UploadStates } from '../uploads/states.js';
import { BATCH, PollingLoop } from './polling-loop.js';

export interface ApprovalLoopDeps {
  uploads: Pick<UploadStates, 'claimAwaitingApproval' | 'askAgain'>;
  removal: (upload: FileUpload) => () => Promise<void>;
  log: FastifyBaseLogger;
}

export class ApprovalLoop extends PollingLoop {
  constructor(private readonly deps: ApprovalLoopDeps) {
    super();
  }

  /** One round: asks about every due upload (up to BATCH); returns how many were asked. */
  async askDue(): Promise<number> {
    const { uploads, removal, log } = this.deps;
    const due = await uploads.claimAwaitingApproval(BATCH);
    await Promise.all(
      due.map(async (upload) => {
        try {
          const now = await uploads.askAgain(upload, removal(upload));
          if (now.status === 'completed') log.info({ uploadId: upload.id }, 'pre-finish: approved');
        } catch (error) {
          if (error instanceof FreightError && error.code === 'ERR_UPLOAD_REJECTED') {
            log.info({ uploadId: upload.id, reason: error.message }, 'pre-finish: refused; its object was removed');
          } else {
            log.warn({ err: error, uploadId: upload.id }, 'pre-finish: could not record the answer; asking again');
          }
        }
      }),
    );
    return due.length;
  }

  protected round(): Promise<number> {
    return this.askDue();
  }

  protected roundFailed(error: unknown): void {
    this.deps.log.warn({ err: error }, 'pre-finish: could not look for uploads awaiting approval; trying again');
  }
}
