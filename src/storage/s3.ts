/**
 * The S3 client settings every S3 caller in Freight uses (the tus store, the direct path, health checks).
 */
import { HeadObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { S3Config } from '../config/index.js';

/** S3_REQUEST_TIMEOUT when no config is at hand (scripts). */
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

export function s3ClientConfig(s3: S3Config, extra: S3ClientConfig = {}, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): S3ClientConfig {
  return {
    ...extra,
    region: s3.region,
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    ...(s3.credentials ? { credentials: s3.credentials } : {}),
    forcePathStyle: s3.forcePathStyle,
    // The SDK's default adds CRC32 checksum trailers to streamed bodies and to presigned URLs; S3-compatible
    // servers (Ceph RGW among them) refuse the trailers, and a presigned URL would carry the CRC of an empty
    // body. Checksums only where an operation requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Without timeouts a storage server that stops answering (a paused process, a dead link) holds requests
    // forever. socketTimeout is the longest the connection may stay silent in either direction: waiting to
    // connect, sending a part the server stopped reading, waiting for the answer, or reading a body that stalls
    // half-way. (The SDK's requestTimeout would also bound the whole upload of a large part, and only logs a
    // warning unless throwOnRequestTimeout is set: not what a 5 GiB part needs.) Each of the SDK's attempts
    // (3 by default) is bounded this way.
    requestHandler: { connectionTimeout: Math.min(timeoutMs, 10_000), socketTimeout: timeoutMs },
  };
}

export function createS3Client(s3: S3Config, extra: S3ClientConfig = {}, timeoutMs?: number): S3Client {
  return new S3Client(s3ClientConfig(s3, extra, timeoutMs));
}

/** S3 error names that mean "no such upload" (AWS says NoSuchUpload; Ceph RGW says NoSuchKey). */
export function isNoSuchUpload(error: unknown): boolean {
  const name = (error as { name?: string } | null)?.name;
  return name === 'NoSuchUpload' || name === 'NoSuchKey';
}

/** An object's length, or undefined when there is no such object. */
export async function objectSize(client: S3Client, bucket: string, key: string): Promise<number | undefined> {
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.ContentLength;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw error;
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);

/** A failure that may pass if the same request is sent again: no answer, a timeout, or S3's 5xx/throttling. */
export function isTransientStorageError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return error.name === 'TimeoutError';
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && NETWORK_CODES.has(code)) return true;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status === undefined ? (error as { $metadata?: unknown }).$metadata !== undefined : status >= 500 || status === 429;
}

/**
 * The SDK's own log lines (a failed streaming upload, retries) go to Freight's log at debug level: Freight logs
 * every failure it answers for itself, with the upload's id. Without a logger the SDK prints to stderr.
 */
export function sdkLogger(log: { debug(obj: object, msg: string): void }): NonNullable<S3ClientConfig['logger']> {
  const toDebug = (...content: unknown[]) => log.debug({ sdk: content }, 'aws sdk');
  return { trace: () => {}, debug: () => {}, info: () => {}, warn: toDebug, error: toDebug };
}
