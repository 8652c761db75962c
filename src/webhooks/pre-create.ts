/**
 * WEBHOOK_PRE_CREATE: before an upload is created (tus POST, direct create, Companion create), the receiver is asked,
 * and waited for (at most WEBHOOK_TIMEOUT). A 2xx allows the upload; a 4xx refuses it, with that status and the
 * receiver's message going back to the client; no answer, a 5xx or anything else is 503 with Retry-After (the
 * client retries; nothing was created).
 */
import type { FastifyBaseLogger } from 'fastify';
import type { WebhookConfig } from '../config/index.js';
import { uploadRejected, webhookUnavailable } from '../errors.js';
import type { NewUpload } from '../uploads/service.js';
import { postSigned, type ReceiverAnswer } from './post.js';

/** The longest rejection message passed on to a client. */
const MAX_MESSAGE = 500;

/** What the receiver is asked about: the upload as its client described it. */
export function preCreateBody(upload: NewUpload): string {
  const { userId, filename, totalSize, mimeType, protocol, metadata } = upload;
  return JSON.stringify({
    event: 'upload.pre-create',
    upload: { userId, filename, size: totalSize, mimeType, protocol, metadata: metadata ?? null },
  });
}

/** The admission check the upload-state service runs before recording a new upload. */
export function preCreateCheck(config: WebhookConfig, log: FastifyBaseLogger): (upload: NewUpload) => Promise<void> {
  return async (upload) => {
    let answer: ReceiverAnswer;
    try {
      answer = await postSigned(config, preCreateBody(upload), { 'Freight-Event': 'upload.pre-create' });
    } catch (error) {
      log.warn({ err: error, userId: upload.userId }, 'pre-create webhook: no answer');
      throw webhookUnavailable(`the pre-create check did not answer (${(error as Error).message})`);
    }
    if (answer.status >= 200 && answer.status < 300) return;
    if (answer.status >= 400 && answer.status < 500) throw uploadRejected(answer.status, rejectionMessage(answer));
    log.warn({ status: answer.status, userId: upload.userId }, 'pre-create webhook: failed');
    throw webhookUnavailable(`the pre-create check failed (it answered ${answer.status})`);
  };
}

/** The receiver's reason: JSON `message`, else the body as text; on one line, and not too long. */
export function rejectionMessage(answer: ReceiverAnswer): string {
  let message = answer.body;
  if (answer.contentType?.includes('json')) {
    try {
      const parsed = JSON.parse(answer.body) as { message?: unknown };
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      // Not JSON after all: the text is the message.
    }
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  const line = message.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  if (line === '') return `the upload was refused (the pre-create check answered ${answer.status})`;
  return line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE)}…` : line;
}
