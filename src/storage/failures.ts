/**
 * What an S3 failure means, told from the error alone (the AWS SDK's shape: a name and `$metadata`, or a network
 * errno): unreachable, throttled, refused for good, or "no such upload". Imports nothing, so the error table
 * (src/errors.ts) can name storage failures without loading the AWS SDK.
 */
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
