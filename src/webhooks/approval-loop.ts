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

/** Uploads claimed (and asked about concurrently) at once. */
const BATCH = 16;
/** How often an idle loop looks for due asks. */
const POLL_MS = 1_000;

export interface ApprovalLoopDeps {
  uploads: Pick<UploadStates, 'claimAwaitingApproval' | 'askAgain'>;
  removal: (upload: FileUpload) => () => Promise<void>;
  log: FastifyBaseLogger;
}

export class ApprovalLoop {
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly deps: ApprovalLoopDeps) {}

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake?.();
    await this.running;
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

  private async loop(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      let asked = 0;
      try {
        asked = await this.askDue();
      } catch (error) {
        this.deps.log.warn({ err: error }, 'pre-finish: could not look for uploads awaiting approval; trying again');
      }
      if (asked < BATCH) await this.pause(POLL_MS);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
