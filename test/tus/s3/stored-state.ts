/**
 * What Freight recorded for a tus upload on S3 (its row and part rows in PostgreSQL), held against what S3 holds.
 *
 * The stored offset must be exactly the bytes S3 holds as a prefix of the upload: whole parts 1..n, each of the
 * size planned at creation, then the staged start of part n + 1 (segments of its staging multipart upload, each
 * at least 5 MiB, and a tail object under 5 MiB). Every one of them is checked in S3 as recorded.
 */
import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import type { StagingState } from '../../../src/db/schema.js';
import { stagingKey, stagingPrefix } from '../../../src/tus/s3/layout.js';
import { normalizeEtag } from '../../../src/uploads/parts.js';
import { listAllParts, listMultipartUploads, MiB, type testSql } from '../../helpers/harness.js';

type Sql = ReturnType<typeof testSql>;

export interface RecordedPart {
  partNumber: number;
  size: number;
  etag: string;
}

export interface StoredUpload {
  status: string;
  storedOffset: number;
  bytesReceived: number;
  totalSize: number | null;
  partSize: number;
  s3UploadId: string | null;
  staging: StagingState | null;
  parts: RecordedPart[];
}

const sum = (values: number[]): number => values.reduce((total, value) => total + value, 0);

/** Parts as S3 lists them or as recorded, ETags without their quotes (RGW quotes UploadPart's, not UploadPartCopy's). */
const comparable = (
  parts: Array<
    { PartNumber?: number; Size?: number; ETag?: string } | { partNumber: number; size: number; etag: string }
  >,
) =>
  parts.map((part) =>
    'partNumber' in part
      ? { partNumber: part.partNumber, size: part.size, etag: normalizeEtag(part.etag) }
      : { partNumber: part.PartNumber, size: part.Size, etag: normalizeEtag(part.ETag ?? '') },
  );

export async function storedUpload(sql: Sql, id: string): Promise<StoredUpload> {
  const [row] = await sql`select * from file_uploads where id = ${id}`;
  if (!row) throw new Error(`no upload ${id}`);
  const parts =
    await sql`select part_number, size, etag from upload_parts where upload_id = ${id} and status = 'stored' order by part_number`;
  return {
    status: row.status as string,
    storedOffset: Number(row.stored_offset),
    bytesReceived: Number(row.bytes_received),
    totalSize: row.total_size === null ? null : Number(row.total_size),
    partSize: Number(row.part_size),
    s3UploadId: row.s3_upload_id as string | null,
    staging: row.staging as StagingState | null,
    parts: parts.map((part) => ({
      partNumber: Number(part.part_number),
      size: Number(part.size),
      etag: part.etag as string,
    })),
  };
}

/** The staged bytes of a staging state: what the shape looks like, for comparisons in a test. */
export function stagedShape(
  staging: StagingState | null,
): { partNumber: number; segments: number[]; tail: number | null } | null {
  return (
    staging && {
      partNumber: staging.partNumber,
      segments: staging.segments.map((s) => s.size),
      tail: staging.tail?.size ?? null,
    }
  );
}

/**
 * Asserts that upload `id` is stored up to exactly `offset`: the row says so, the part rows and staged bytes add
 * up to it, every part but the upload's last has the planned size, and S3 holds each part and staged byte as
 * recorded. Returns what was recorded.
 */
export async function expectStoredUpTo(
  sql: Sql,
  s3: S3Client,
  bucket: string,
  id: string,
  offset: number,
): Promise<StoredUpload> {
  const upload = await storedUpload(sql, id);
  expect(upload.storedOffset).toBe(offset);
  expect(upload.bytesReceived).toBe(offset);

  const { parts, staging, partSize } = upload;
  const complete = upload.totalSize !== null && offset === upload.totalSize;
  expect(parts.map((part) => part.partNumber)).toEqual(parts.map((_, index) => index + 1));
  const whole = complete ? parts.slice(0, -1) : parts;
  expect(whole.map((part) => part.size)).toEqual(whole.map(() => partSize));

  const staged = staging ? sum(staging.segments.map((segment) => segment.size)) + (staging.tail?.size ?? 0) : 0;
  expect(sum(parts.map((part) => part.size)) + staged).toBe(offset);
  if (staging) {
    expect(staging.partNumber).toBe(parts.length + 1);
    expect(staging.segments.every((segment) => segment.size >= 5 * MiB)).toBe(true);
    if (staging.tail) expect(staging.tail.size).toBeLessThan(5 * MiB);
    expect(staged).toBeLessThan(partSize);
  }
  if (upload.status === 'completed') return upload;

  // S3 holds what Postgres claims: the recorded parts, the staging upload's segments, the tail object.
  if (upload.s3UploadId) {
    const listed = await listAllParts(s3, bucket, id, upload.s3UploadId);
    expect(comparable(listed)).toEqual(comparable(parts));
  } else {
    expect(parts).toEqual([]);
  }
  if (staging?.uploadId) {
    const segments = await listAllParts(s3, bucket, stagingKey(id, staging.partNumber), staging.uploadId);
    expect(comparable(segments)).toEqual(comparable(staging.segments));
  }
  if (staging?.tail) {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: staging.tail.key }));
    expect(head.ContentLength).toBe(staging.tail.size);
  }
  return upload;
}

/** What S3 still holds under an upload's staging prefix, and the multipart uploads still open for its keys. */
export async function leftoversOf(
  s3: S3Client,
  bucket: string,
  id: string,
): Promise<{ objects: string[]; openUploads: string[] }> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: stagingPrefix(id) }));
  const open = await listMultipartUploads(s3, bucket);
  return {
    objects: (listed.Contents ?? []).map((object) => object.Key ?? ''),
    openUploads: open.filter((upload) => upload.key.startsWith(id)).map((upload) => upload.key),
  };
}
