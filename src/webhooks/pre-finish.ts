/**
 * WEBHOOK_PRE_FINISH: once an upload's bytes are stored, verified and assembled, the receiver is asked (signed,
 * `Freight-Event: upload.pre-finish`, bounded by WEBHOOK_TIMEOUT) with the body of an upload event: the event name,
 * the upload as GET /api/uploads/:id shows it (status `awaiting_approval`) and when it was asked. 2xx approves it,
 * 4xx refuses it (with the receiver's message), anything else is no answer yet (src/uploads/approval.ts decides).
 */
import type { FastifyBaseLogger } from 'fastify';
import { uploadDetail } from '../api/views.js';
import type { WebhookConfig } from '../config/index.js';
import type { FileUpload } from '../db/schema.js';
import type { PreFinishCheck, Verdict } from '../uploads/approval.js';
import { postSigned } from './post.js';
import { rejectionMessage } from './pre-create.js';

export const PRE_FINISH_EVENT = 'upload.pre-finish';

/** What the receiver is asked about: `{ event, upload, occurredAt }` (no `id`: it is a question, not an outbox event). */
export function preFinishBody(upload: FileUpload, partsCount: number, at: Date): string {
  return JSON.stringify({
    event: PRE_FINISH_EVENT,
    upload: uploadDetail(upload, partsCount),
    occurredAt: at.toISOString(),
  });
}

/** A 2xx, a 4xx, or neither: what an answer (or its absence) means. */
export function verdictOf(answer: { status: number; body: string; contentType: string | undefined }): Verdict {
  if (answer.status >= 200 && answer.status < 300) return { kind: 'approved' };
  if (answer.status >= 400 && answer.status < 500) {
    return { kind: 'rejected', status: answer.status, message: rejectionMessage(answer, 'pre-finish') };
  }
  return { kind: 'unanswered', reason: `answered ${answer.status}` };
}

export function preFinishCheck(
  config: Pick<WebhookConfig, 'url' | 'secret' | 'timeoutMs'>,
  log: FastifyBaseLogger,
  partsOf: (upload: FileUpload) => Promise<number>,
  now: () => Date = () => new Date(),
): PreFinishCheck {
  return {
    timeoutMs: config.timeoutMs,
    async ask(upload) {
      try {
        const body = preFinishBody(upload, await partsOf(upload), now());
        const verdict = verdictOf(await postSigned(config, body, { 'Freight-Event': PRE_FINISH_EVENT }));
        if (verdict.kind === 'unanswered')
          log.warn({ uploadId: upload.id, reason: verdict.reason }, 'pre-finish webhook: no decision');
        return verdict;
      } catch (error) {
        log.warn({ err: error, uploadId: upload.id }, 'pre-finish webhook: no answer');
        return { kind: 'unanswered', reason: `did not answer (${(error as Error).message})` };
      }
    },
  };
}
