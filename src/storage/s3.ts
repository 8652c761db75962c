/**
 * The S3 client settings every S3 caller in Freight uses (the tus store, the direct path, health checks).
 */
import { HeadObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { S3Config } from '../config/index.js';

export function s3ClientConfig(s3: S3Config, extra: S3ClientConfig = {}): S3ClientConfig {
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
    // Without timeouts a storage server that stops answering (a full disk, a dead link) holds requests forever.
    // requestTimeout is the longest S3 may stay silent on a connection, not a limit on the whole request.
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
  };
}

export function createS3Client(s3: S3Config, extra: S3ClientConfig = {}): S3Client {
  return new S3Client(s3ClientConfig(s3, extra));
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
