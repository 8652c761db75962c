/**
 * The S3 client settings every S3 caller in Freight uses (the tus store, the direct path, health checks).
 */
import { HeadObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { s3StatusOf } from '../errors.js';
import type { S3Config } from '../config/index.js';
import { scrub, serializeError } from '../ops/redact.js';

/** S3_REQUEST_TIMEOUT when no config is at hand (scripts). */
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

export function s3ClientConfig(
  s3: S3Config,
  extra: S3ClientConfig = {},
  timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
): S3ClientConfig {
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

/** Told of every S3 call a client makes: the operation ("UploadPart"), its duration, and its error if it failed. */
export type S3CallObserver = (operation: string, seconds: number, error?: unknown) => void;

/**
 * A client with Freight's settings. With an observer, every call is timed by a middleware at the SDK's first
 * step, so the time includes the SDK's retries. Clients that only presign get no observer: presigning runs the
 * same middleware stack without calling S3, and would count calls that never happened.
 */
export function createS3Client(
  s3: S3Config,
  extra: S3ClientConfig = {},
  timeoutMs?: number,
  observe?: S3CallObserver,
): S3Client {
  const client = new S3Client(s3ClientConfig(s3, extra, timeoutMs));
  if (observe) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
        const started = performance.now();
        try {
          const output = await next(args);
          observe(operation, (performance.now() - started) / 1000);
          return output;
        } catch (error) {
          observe(operation, (performance.now() - started) / 1000, error);
          throw error;
        }
      },
      { step: 'initialize', name: 'freightCallTiming', priority: 'high' },
    );
  }
  return client;
}

/** An object's length, or undefined when there is no such object. */
export async function objectSize(client: S3Client, bucket: string, key: string): Promise<number | undefined> {
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.ContentLength;
  } catch (error) {
    if (s3StatusOf(error) === 404) return undefined;
    throw error;
  }
}

/** One argument of an SDK log line, as text with no signature, credential or token left in it. */
function sdkLogText(content: unknown): unknown {
  if (typeof content === 'string') return scrub(content);
  if (content instanceof Error) return serializeError(content);
  try {
    return scrub(JSON.stringify(content) ?? String(content)).slice(0, 2000);
  } catch {
    return '[unserializable]';
  }
}

/**
 * The SDK's own log lines (a failed streaming upload, retries) go to Freight's log at debug level: Freight logs
 * every failure it answers for itself, with the upload's id. Without a logger the SDK prints to stderr. What the
 * SDK logs may hold a request (its URL, its Authorization header): only scrubbed text of it is kept.
 */
export function sdkLogger(log: { debug(obj: object, msg: string): void }): NonNullable<S3ClientConfig['logger']> {
  const toDebug = (...content: unknown[]) => log.debug({ sdk: content.map(sdkLogText) }, 'aws sdk');
  return { trace: () => {}, debug: () => {}, info: () => {}, warn: toDebug, error: toDebug };
}
