/**
 * One signed POST to WEBHOOK_URL, bounded by WEBHOOK_TIMEOUT from the first byte sent to the last byte of the answer
 * read (invariant 5: a receiver that stalls costs one attempt, never a hung request or deliverer). Redirects are
 * not followed: the receiver is the URL configured. Nothing here logs: headers carry the signature.
 */
import type { WebhookConfig } from '../config/index.js';
import { SIGNATURE_HEADER, signatureHeader } from './signature.js';

export interface ReceiverAnswer {
  status: number;
  /** The answer's body, at most MAX_ANSWER_BYTES of it. */
  body: string;
  contentType: string | undefined;
}

/** The most of a receiver's answer read (a rejection's message); the rest is dropped. */
const MAX_ANSWER_BYTES = 64 * 1024;

export class ReceiverUnreachable extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ReceiverUnreachable';
  }
}

export async function postSigned(
  config: Pick<WebhookConfig, 'url' | 'secret' | 'timeoutMs'>,
  body: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<ReceiverAnswer> {
  const timeout = AbortSignal.timeout(config.timeoutMs);
  const bounded = signal ? AbortSignal.any([timeout, signal]) : timeout;
  try {
    const response = await fetch(config.url, {
      method: 'POST',
      redirect: 'manual',
      signal: bounded,
      headers: {
        ...headers,
        'Content-Type': 'application/json',
        'User-Agent': 'Freight-Webhooks/1',
        [SIGNATURE_HEADER]: signatureHeader(config.secret, body),
      },
      body,
    });
    return {
      status: response.status,
      body: await readSome(response),
      contentType: response.headers.get('content-type') ?? undefined,
    };
  } catch (error) {
    if (timeout.aborted)
      throw new ReceiverUnreachable(`no answer within ${config.timeoutMs / 1000} s`, { cause: error });
    if (signal?.aborted)
      throw new ReceiverUnreachable('the delivery was cancelled (Freight is stopping)', { cause: error });
    const code = (error as { cause?: { code?: string } }).cause?.code;
    throw new ReceiverUnreachable(`unreachable${code ? ` (${code})` : ''}`, { cause: error });
  }
}

async function readSome(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size >= MAX_ANSWER_BYTES) {
      await reader.cancel();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8');
}
