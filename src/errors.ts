/**
 * Every error Freight answers, by name, in one table (as tusd declares ErrMismatchOffset and the others): a
 * stable code for machines, the HTTP status it carries, and what it means. Services throw FreightError; the one
 * function toHttpAnswer turns anything thrown into an answer, and only the error handlers write it: JSON routes
 * as `{"error": "<code>", "message": "…"}`, tus (text/plain, like tusd) as `<code>: <message>`. It also knows what
 * a storage failure means (unreachable, throttled, refused for good). It imports nothing: the ground floor.
 */

export const ERROR_CODES = {
  /** The request cannot be read: a malformed header, parameter or body (the message says which). */
  ERR_BAD_REQUEST: 400,
  /** No token, a bad signature, an expired token, a missing claim. */
  ERR_UNAUTHORIZED: 401,
  /** No such upload, or not the caller's (the same answer, on purpose). */
  ERR_UPLOAD_NOT_FOUND: 404,
  ERR_ROUTE_NOT_FOUND: 404,
  /** tus: the PATCH's Upload-Offset is not the upload's offset; nothing was written. */
  ERR_MISMATCHED_OFFSET: 409,
  /** The upload's state does not allow this (completed, being completed by another request, moved on meanwhile). */
  ERR_UPLOAD_CONFLICT: 409,
  /** The parts storage holds are not the upload's planned parts (missing, wrong size, wrong ETag): nothing assembled. */
  ERR_PARTS_MISMATCH: 409,
  /** tus concatenation: a final upload takes no PATCH (it is made of its partial uploads). */
  ERR_UPLOAD_IS_FINAL: 403,
  /** tus concatenation: a partial upload named by a final upload is already part of another final upload. */
  ERR_PARTIAL_IN_USE: 409,
  /** The upload was terminated, expired, or storage lost it: it can never be resumed. */
  ERR_UPLOAD_GONE: 410,
  /** tus: an unsupported Tus-Resumable version (Tus-Version says which are). */
  ERR_UNSUPPORTED_VERSION: 412,
  /** Larger than MAX_UPLOAD_SIZE or than the upload's declared length. */
  ERR_UPLOAD_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  /** A download's Range starts past the end of the file (Content-Range says its size). */
  ERR_RANGE_NOT_SATISFIABLE: 416,
  /** A download link that expired, was altered, or is another upload's: ask for a new one (with the token). */
  ERR_LINK_REFUSED: 403,
  /** Another request holds the upload, or the offset cannot be told right now: retry (Retry-After). */
  ERR_UPLOAD_LOCKED: 423,
  /** The user has USER_MAX_OPEN_UPLOADS unfinished uploads. */
  ERR_TOO_MANY_UPLOADS: 429,
  /** The user has USER_MAX_UPLOADS uploads kept (of any status; ended ones count until the janitor prunes them). */
  ERR_TOO_MANY_UPLOADS_KEPT: 429,
  /** tus checksum: the PATCH's bytes do not have its Upload-Checksum (or did not all arrive); nothing was recorded. */
  ERR_CHECKSUM_MISMATCH: 460,
  /** The whole upload's SHA-256 is not the one its client announced: it is rejected, never completed. */
  ERR_DIGEST_MISMATCH: 460,
  /** The pre-create webhook refused the upload: the status is the 4xx it answered (403 here is only the default). */
  ERR_UPLOAD_REJECTED: 403,
  ERR_INTERNAL: 500,
  /** Storage refused the request for a reason a retry will not change (credentials, permissions, no bucket). */
  ERR_STORAGE_REFUSED: 500,
  ERR_NOT_IMPLEMENTED: 501,
  /**
   * The pre-create webhook allowed the upload with an answer Freight refuses (invalid JSON, a hostile or taken key,
   * too many tags …): the receiver's fault, not the client's; nothing was created.
   */
  ERR_WEBHOOK_BAD_ANSWER: 502,
  /** S3 is down, failing or not answering in time: retry (Retry-After); the upload keeps what was stored. */
  ERR_STORAGE_UNAVAILABLE: 503,
  /** PostgreSQL is down, restarting or not answering in time: retry (Retry-After); nothing was half-recorded. */
  ERR_DATABASE_UNAVAILABLE: 503,
  /** The pre-create webhook did not answer in time, or failed (5xx): retry (Retry-After); nothing was created. */
  ERR_WEBHOOK_UNAVAILABLE: 503,
  ERR_INSUFFICIENT_STORAGE: 507,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class FreightError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly details?: unknown,
    /** `status`: only for a code whose status someone else chooses (ERR_UPLOAD_REJECTED). */
    options?: ErrorOptions & { status?: number },
  ) {
    super(message, options);
    this.name = 'FreightError';
    this.status = options?.status ?? ERROR_CODES[code];
  }
}

/** Seconds a client is asked to wait before retrying after a dependency failed or an upload was busy (Retry-After). */
export const RETRY_AFTER_SECONDS = 5;
const retryAfter = { 'Retry-After': String(RETRY_AFTER_SECONDS) };

export const badRequest = (message: string, details?: unknown) =>
  new FreightError('ERR_BAD_REQUEST', message, {}, details);
export const unauthorized = (message: string) =>
  new FreightError('ERR_UNAUTHORIZED', message, { 'WWW-Authenticate': 'Bearer realm="freight"' });
export const notFound = (message = 'upload not found') => new FreightError('ERR_UPLOAD_NOT_FOUND', message);
export const conflict = (message: string, details?: unknown) =>
  new FreightError('ERR_UPLOAD_CONFLICT', message, {}, details);
export const offsetMismatch = (message: string) => new FreightError('ERR_MISMATCHED_OFFSET', message);
export const partsMismatch = (message: string, details?: unknown) =>
  new FreightError('ERR_PARTS_MISMATCH', message, {}, details);
export const partialInUse = (message: string) => new FreightError('ERR_PARTIAL_IN_USE', message);
export const gone = (message: string) => new FreightError('ERR_UPLOAD_GONE', message);
export const payloadTooLarge = (message: string) => new FreightError('ERR_UPLOAD_TOO_LARGE', message);
/** "the server SHOULD send a Content-Range header field with an unsatisfied-range value" (RFC 9110 §15.5.17). */
export const rangeNotSatisfiable = (size: number) =>
  new FreightError('ERR_RANGE_NOT_SATISFIABLE', `the range starts past the end of the file (${size} bytes)`, {
    'Content-Range': `bytes */${size}`,
  });
export const linkRefused = (message: string) => new FreightError('ERR_LINK_REFUSED', message);
/** 423 Locked: tus clients retry it on their schedule (Retry-After says when). */
export const locked = (message: string) => new FreightError('ERR_UPLOAD_LOCKED', message, retryAfter);
export const notImplemented = (message: string) => new FreightError('ERR_NOT_IMPLEMENTED', message);
export const tooManyUploads = (message: string) => new FreightError('ERR_TOO_MANY_UPLOADS', message);
export const tooManyUploadsKept = (message: string) => new FreightError('ERR_TOO_MANY_UPLOADS_KEPT', message);
export const checksumMismatch = (message: string) => new FreightError('ERR_CHECKSUM_MISMATCH', message);
export const digestMismatch = (message: string) => new FreightError('ERR_DIGEST_MISMATCH', message);
/** The pre-create webhook answered `status` (a 4xx) with this message: the client gets both. */
export const uploadRejected = (status: number, message: string) =>
  new FreightError('ERR_UPLOAD_REJECTED', message, {}, undefined, { status });
/** The pre-create webhook could not decide (no answer, a 5xx): retry later; nothing was created. */
export const webhookUnavailable = (message: string) =>
  new FreightError('ERR_WEBHOOK_UNAVAILABLE', `${message}; retry later`, retryAfter);
/** The pre-create webhook's 2xx asked for something Freight refuses (the message says what); nothing was created. */
export const webhookBadAnswer = (message: string) =>
  new FreightError('ERR_WEBHOOK_BAD_ANSWER', `the pre-create check answered with ${message}`);
/** The S3 server (or the disk) failed; the upload stays resumable. */
export const storageUnavailable = (message: string) => new FreightError('ERR_STORAGE_UNAVAILABLE', message, retryAfter);
/** The server's temp disk (or its budget for it) is full; the upload keeps what was stored: retry later. */
export const insufficientStorage = (message: string) =>
  new FreightError('ERR_INSUFFICIENT_STORAGE', message, retryAfter);
/** PostgreSQL is down, restarting or not answering in time; nothing was half-recorded. */
export const databaseUnavailable = (message: string, cause?: unknown) =>
  new FreightError('ERR_DATABASE_UNAVAILABLE', `${message}; retry later`, retryAfter, undefined, { cause });

export interface HttpAnswer {
  status: number;
  code: ErrorCode;
  message: string;
  headers: Record<string, string>;
  details?: unknown;
}

const answer = (code: ErrorCode, message: string, headers: Record<string, string> = {}): HttpAnswer => ({
  status: ERROR_CODES[code],
  code,
  message,
  headers,
});

/** Fastify's own client errors (schema validation, malformed JSON, oversize bodies), named by status. */
const CODE_BY_STATUS = new Map<number, ErrorCode>([
  [400, 'ERR_BAD_REQUEST'],
  [403, 'ERR_BAD_REQUEST'],
  [404, 'ERR_UPLOAD_NOT_FOUND'],
  [409, 'ERR_UPLOAD_CONFLICT'],
  [410, 'ERR_UPLOAD_GONE'],
  [412, 'ERR_UNSUPPORTED_VERSION'],
  [413, 'ERR_UPLOAD_TOO_LARGE'],
  [415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
  [423, 'ERR_UPLOAD_LOCKED'],
  [429, 'ERR_TOO_MANY_UPLOADS'],
  [460, 'ERR_CHECKSUM_MISMATCH'],
  [501, 'ERR_NOT_IMPLEMENTED'],
]);

// What an S3 failure means, told from the error alone (the AWS SDK's shape: a name and `$metadata`, or a network
// errno): unreachable, throttled, refused for good, or "no such upload". Here, so that naming a storage failure
// loads neither the AWS SDK nor anything above this module.

/** S3 error names that mean "no such upload" (AWS says NoSuchUpload; Ceph RGW says NoSuchKey). */
export function isNoSuchUpload(error: unknown): boolean {
  const name = (error as { name?: string } | null)?.name;
  return name === 'NoSuchUpload' || name === 'NoSuchKey';
}

/** The HTTP status S3 answered with, when it answered (the AWS SDK's error shape). */
export const s3StatusOf = (error: unknown): number | undefined =>
  (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;

/** An error answered by S3 (or an S3-compatible server), or the failure to reach it: the AWS SDK's shape. */
const isS3Error = (error: unknown): error is Error =>
  error instanceof Error && typeof (error as { $metadata?: unknown }).$metadata === 'object';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

/**
 * What went wrong in storage: "storage unreachable (ECONNREFUSED)", "storage error: SlowDown (S3 answered 503)",
 * …; `permanent` when S3 refused for a reason a retry will not change (a 4xx other than throttling:
 * AccessDenied, NoSuchBucket, InvalidAccessKeyId …). Undefined if the error is not storage's.
 */
export function storageFailure(error: unknown): { problem: string; permanent: boolean } | undefined {
  const errno = (error as NodeJS.ErrnoException | null)?.code;
  if (
    errno !== undefined &&
    NETWORK_CODES.has(errno) &&
    (isS3Error(error) || (error as { syscall?: string }).syscall)
  ) {
    return { problem: `storage unreachable (${errno})`, permanent: false };
  }
  // The SDK's timeout after S3_REQUEST_TIMEOUT of silence (without $metadata when the body was a stream).
  if (error instanceof Error && error.name === 'TimeoutError')
    return { problem: 'storage did not answer in time', permanent: false };
  if (isS3Error(error)) {
    const status = s3StatusOf(error);
    const permanent = status !== undefined && status >= 400 && status < 500 && status !== 429 && status !== 408;
    return { problem: `storage error: ${error.name}${status ? ` (S3 answered ${status})` : ''}`, permanent };
  }
  return undefined;
}

/** A failure that may pass if the same request is sent again: no answer, a timeout, or S3's 5xx/throttling. */
export const isTransientStorageError = (error: unknown): boolean => storageFailure(error)?.permanent === false;

/** The problem text alone (kept on a failed upload's record). */
export const storageProblem = (error: unknown): string | undefined => storageFailure(error)?.problem;

/**
 * The message of anything thrown: an Error's, or the `body` of the plain `{status_code, body}` objects
 * @tus/utils throws (never "[object Object]").
 */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  const { body, message } = (error ?? {}) as { body?: unknown; message?: unknown };
  if (typeof body === 'string') return body.trim();
  if (typeof message === 'string') return message;
  if (typeof error === 'object' && error !== null) {
    try {
      return JSON.stringify(error);
    } catch {
      // a cycle: fall through
    }
  }
  return String(error);
}

/** Why an upload failed, for its record: storage's problem, else the error's message. */
export const failureReason = (error: unknown): string => storageProblem(error) ?? messageOf(error);

interface FastifyStyleError {
  statusCode?: number;
  message: string;
}

/** Maps anything thrown to the answer the client gets. Unknown errors are 500s (and get logged by the caller). */
export function toHttpAnswer(error: unknown): HttpAnswer {
  if (error instanceof FreightError) {
    return {
      status: error.status,
      code: error.code,
      message: error.message,
      headers: error.headers,
      details: error.details,
    };
  }
  if ((error as NodeJS.ErrnoException | null)?.code === 'ENOSPC') {
    return answer('ERR_INSUFFICIENT_STORAGE', 'the server is out of disk space; retry later', retryAfter);
  }
  // Storage failures are the server's: 503 and retry later (the upload stays resumable from what was stored),
  // unless storage refused for good. The message names the failure, never S3's internals.
  const storage = storageFailure(error);
  if (storage?.permanent)
    return answer('ERR_STORAGE_REFUSED', `${storage.problem}; the server's storage refuses this request`);
  if (storage) return answer('ERR_STORAGE_UNAVAILABLE', `${storage.problem}; retry later`, retryAfter);
  if (error instanceof Error) {
    const fastify = error as FastifyStyleError;
    // Route-schema validation, malformed JSON, unsupported body types, oversize bodies: client errors.
    if (typeof fastify.statusCode === 'number' && fastify.statusCode >= 400 && fastify.statusCode < 500) {
      const code = CODE_BY_STATUS.get(fastify.statusCode) ?? 'ERR_BAD_REQUEST';
      return { status: fastify.statusCode, code, message: fastify.message, headers: {} };
    }
  }
  return answer('ERR_INTERNAL', 'internal server error');
}

/** A dependency failed or the upload is busy, so the request could not be served now; a retry may succeed. */
export const isTransient = (error: unknown): boolean => {
  const { status } = toHttpAnswer(error);
  return status === 503 || status === 423;
};
