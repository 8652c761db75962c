/**
 * WEBHOOK_PRE_CREATE: before an upload is created (tus POST, direct create, Companion create), the receiver is asked,
 * and waited for (at most WEBHOOK_TIMEOUT). A 2xx allows the upload, and its JSON body may shape the object
 * (object-shape.ts: key, Content-Type, Content-Disposition, storage class, tags, metadata), an answer Freight
 * refuses being 502 to the client and a warning in the log; a 4xx refuses it, with that status and the receiver's
 * message going back to the client; no answer, a 5xx or anything else is 503 with Retry-After (the client
 * retries; nothing was created).
 */
import type { FastifyBaseLogger } from 'fastify';
import type { WebhookConfig } from '../config/index.js';
import { uploadRejected, webhookBadAnswer, webhookUnavailable } from '../errors.js';
import type { NewUpload } from '../uploads/service.js';
import { BadShapeAnswer, shapeOfAnswer, type ShapeAnswer, type ShapeRules } from './object-shape.js';
import { postSigned, type ReceiverAnswer } from './post.js';

/** The longest rejection message passed on to a client. */
const MAX_MESSAGE = 500;

/**
 * What the receiver is asked about: the upload as its client described it, and the id it will have (a key the
 * receiver names may hold it: ids are unique).
 */
export function preCreateBody(upload: NewUpload): string {
  const { id, userId, filename, totalSize, mimeType, protocol, metadata } = upload;
  return JSON.stringify({
    event: 'upload.pre-create',
    upload: { id, userId, filename, size: totalSize, mimeType, protocol, metadata: metadata ?? null },
  });
}

/** The bucket's rules for an answer, and a look into it: whether an object is at a key. */
export interface PreCreateBucket extends ShapeRules {
  objectExists(key: string): Promise<boolean>;
}

/**
 * The admission check the upload-state service runs before recording a new upload: what the receiver asked of the
 * object, if anything. `bucket` undefined: the local file store, which keeps no object shape (an answer is checked
 * all the same, and what it asks is ignored with a warning).
 */
export function preCreateCheck(
  config: Pick<WebhookConfig, 'url' | 'secret' | 'timeoutMs'>,
  log: FastifyBaseLogger,
  bucket: PreCreateBucket | undefined,
): (upload: NewUpload) => Promise<ShapeAnswer | undefined> {
  return async (upload) => {
    let answer: ReceiverAnswer;
    try {
      answer = await postSigned(config, preCreateBody(upload), { 'Freight-Event': 'upload.pre-create' });
    } catch (error) {
      log.warn({ err: error, userId: upload.userId }, 'pre-create webhook: no answer');
      throw webhookUnavailable(`the pre-create check did not answer (${(error as Error).message})`);
    }
    if (answer.status >= 200 && answer.status < 300) return shapeOf(answer, upload, bucket, log);
    if (answer.status >= 400 && answer.status < 500) throw uploadRejected(answer.status, rejectionMessage(answer));
    log.warn({ status: answer.status, userId: upload.userId }, 'pre-create webhook: failed');
    throw webhookUnavailable(`the pre-create check failed (it answered ${answer.status})`);
  };
}

/**
 * What the answer asks of the object, checked. A key it names must also be free in the bucket: rows know every
 * upload's key (the unique index refuses a taken one at the insert), but not an object left by a row deleted by
 * hand, or put there by someone else, which the upload would replace. (Storage down: 503, the client retries.)
 */
async function shapeOf(
  answer: ReceiverAnswer,
  upload: NewUpload,
  bucket: PreCreateBucket | undefined,
  log: FastifyBaseLogger,
): Promise<ShapeAnswer | undefined> {
  const refuse = (problem: string) => {
    log.warn({ userId: upload.userId, problem }, 'pre-create webhook: an answer Freight refuses');
    return webhookBadAnswer(problem);
  };
  let shaped: ShapeAnswer | undefined;
  try {
    shaped = shapeOfAnswer(answer, bucket ?? { keyPrefix: '', tagging: true, reservedTags: [] });
  } catch (error) {
    if (!(error instanceof BadShapeAnswer)) throw error;
    throw refuse(error.message);
  }
  if (shaped && !bucket) {
    log.warn({ userId: upload.userId }, 'pre-create webhook: the local file store keeps no object shape; ignored');
    return undefined;
  }
  if (shaped?.key !== undefined && bucket && (await bucket.objectExists(bucket.keyPrefix + shaped.key))) {
    throw refuse(`the key ${JSON.stringify(bucket.keyPrefix + shaped.key)}, where the bucket already holds an object`);
  }
  return shaped;
}

/** The receiver's reason: JSON `message`, else the body as text; on one line, and not too long. */
export function rejectionMessage(answer: ReceiverAnswer, check: 'pre-create' | 'pre-finish' = 'pre-create'): string {
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
  if (line === '') return `the upload was refused (the ${check} check answered ${answer.status})`;
  return line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE)}…` : line;
}
