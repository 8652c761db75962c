/**
 * Every error Freight answers with, declared in one place (as tusd does), and the one function that turns any
 * thrown value into an HTTP answer. Services throw these; only the error handlers write them.
 */
import { ERRORS as TUS_ERRORS } from '@tus/utils';

const STATUS = {
  bad_request: 400,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  gone: 410,
  precondition_failed: 412,
  payload_too_large: 413,
  unsupported_media_type: 415,
  locked: 423,
  too_many_requests: 429,
  internal: 500,
  not_implemented: 501,
  storage_unavailable: 503,
  database_unavailable: 503,
  insufficient_storage: 507,
} as const;

export type ErrorCode = keyof typeof STATUS;

export class FreightError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly details?: unknown,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'FreightError';
    this.status = STATUS[code];
  }
}

/** Seconds a client is asked to wait before retrying after a dependency failed or an upload was busy (Retry-After). */
export const RETRY_AFTER_SECONDS = 5;

export const badRequest = (message: string, details?: unknown) =>
  new FreightError('bad_request', message, {}, details);
export const unauthorized = (message: string) =>
  new FreightError('unauthorized', message, { 'WWW-Authenticate': 'Bearer realm="freight"' });
export const notFound = (message = 'upload not found') => new FreightError('not_found', message);
export const conflict = (message: string, details?: unknown) => new FreightError('conflict', message, {}, details);
export const gone = (message: string) => new FreightError('gone', message);
export const payloadTooLarge = (message: string) => new FreightError('payload_too_large', message);
/** 423 Locked: tus clients retry it on their schedule (Retry-After says when). */
export const locked = (message: string, retryAfterSeconds = RETRY_AFTER_SECONDS) =>
  new FreightError('locked', message, { 'Retry-After': String(retryAfterSeconds) });
export const notImplemented = (message: string) => new FreightError('not_implemented', message);
/** 429: a per-user limit is reached (the message says which and what frees it). */
export const tooManyRequests = (message: string) => new FreightError('too_many_requests', message);
/** The S3 server (or the disk) failed; the upload stays resumable. */
export const storageUnavailable = (message: string) =>
  new FreightError('storage_unavailable', message, { 'Retry-After': String(RETRY_AFTER_SECONDS) });
/** PostgreSQL is down, restarting or not answering in time; nothing was half-recorded. */
export const databaseUnavailable = (message: string, cause?: unknown) =>
  new FreightError('database_unavailable', `${message}; retry later`, { 'Retry-After': String(RETRY_AFTER_SECONDS) }, undefined, {
    cause,
  });

/** A dependency failed or is busy, so the request could not be served now; a retry later may succeed. */
export const isTransient = (error: unknown): boolean => {
  const { status } = toHttpAnswer(error);
  return status === 503 || status === 423;
};

export interface HttpAnswer {
  status: number;
  code: string;
  message: string;
  headers: Record<string, string>;
  details?: unknown;
}

/** The tus library's own errors, re-mapped where its defaults differ from the tus 1.0 spec. */
const TUS_REMAP = new Map<unknown, { code: ErrorCode; message: string }>([
  // "The request MUST include a Upload-Offset header" – a malformed request is a 400, not 403.
  [TUS_ERRORS.MISSING_OFFSET, { code: 'bad_request', message: 'Upload-Offset header required' }],
  // A PATCH without the tus media type cannot be processed: 415 Unsupported Media Type.
  [
    TUS_ERRORS.INVALID_CONTENT_TYPE,
    { code: 'unsupported_media_type', message: 'Content-Type must be application/offset+octet-stream' },
  ],
  // The upload is busy with another request that did not give its lock back in time: 423 Locked.
  [
    TUS_ERRORS.ERR_LOCK_TIMEOUT,
    { code: 'locked', message: 'the upload is locked by another request; retry shortly' },
  ],
]);

interface TusStyleError {
  status_code: number;
  body: string;
}

function isTusStyle(error: unknown): error is TusStyleError {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as TusStyleError).status_code === 'number' &&
    typeof (error as TusStyleError).body === 'string'
  );
}

/** An error answered by S3 (or an S3-compatible server), or the failure to reach it: the AWS SDK's shape. */
function isS3Error(error: unknown): error is Error & { $metadata: { httpStatusCode?: number } } {
  return error instanceof Error && typeof (error as { $metadata?: unknown }).$metadata === 'object';
}

const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

/** "storage error: NoSuchKey (S3 answered 404)" / "storage unreachable (ECONNREFUSED)", or undefined if not storage's. */
export function storageProblem(error: unknown): string | undefined {
  const errno = (error as NodeJS.ErrnoException | null)?.code;
  if (errno !== undefined && NETWORK_ERRORS.has(errno) && (isS3Error(error) || (error as { syscall?: string }).syscall)) {
    return `storage unreachable (${errno})`;
  }
  if (isS3Error(error)) {
    const status = error.$metadata.httpStatusCode;
    return `storage error: ${error.name}${status ? ` (S3 answered ${status})` : ''}`;
  }
  return undefined;
}

interface FastifyStyleError {
  statusCode?: number;
  code?: string;
  message: string;
  validation?: unknown;
}

/** Maps anything thrown to the answer the client gets. Unknown errors are 500s (and get logged by the caller). */
export function toHttpAnswer(error: unknown): HttpAnswer {
  if (error instanceof FreightError) {
    return { status: error.status, code: error.code, message: error.message, headers: error.headers, details: error.details };
  }
  const remapped = TUS_REMAP.get(error);
  if (remapped) {
    const headers: Record<string, string> = remapped.code === 'locked' ? { 'Retry-After': String(RETRY_AFTER_SECONDS) } : {};
    return { status: STATUS[remapped.code], code: remapped.code, message: remapped.message, headers };
  }
  if (isTusStyle(error)) {
    const code = (Object.keys(STATUS) as ErrorCode[]).find((key) => STATUS[key] === error.status_code) ?? 'internal';
    return { status: error.status_code, code, message: error.body.trim(), headers: {} };
  }
  // Storage failures are the server's, and temporary as far as the client can tell: 503, the upload stays
  // resumable from what was stored. The message names the failure, never S3's internals.
  const errno = (error as NodeJS.ErrnoException | null)?.code;
  if (errno === 'ENOSPC') {
    return { status: 507, code: 'insufficient_storage', message: 'the server is out of disk space; retry later', headers: {} };
  }
  const problem = storageProblem(error);
  if (problem) {
    return {
      status: 503,
      code: 'storage_unavailable',
      message: `${problem}; retry later`,
      headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
    };
  }
  if (error instanceof Error) {
    const fastify = error as FastifyStyleError;
    // Route-schema validation, malformed JSON, unsupported body types, oversize bodies: client errors.
    if (typeof fastify.statusCode === 'number' && fastify.statusCode >= 400 && fastify.statusCode < 500) {
      const code = (Object.keys(STATUS) as ErrorCode[]).find((key) => STATUS[key] === fastify.statusCode) ?? 'bad_request';
      return { status: fastify.statusCode, code, message: fastify.message, headers: {} };
    }
  }
  return { status: 500, code: 'internal', message: 'internal server error', headers: {} };
}
