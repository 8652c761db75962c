/**
 * @tus/s3-store with what Freight adds to it:
 * - the part planner (uploads/planner.ts) instead of S3Store's own;
 * - a part row (number, size, ETag) for each part stored, which S3Store does not keep;
 * - the parts check (uploads/parts.ts) before S3 assembles the object;
 * - recovery of uploads whose bytes are all stored but whose object was never assembled;
 * - zero-byte uploads assembled at creation, the incomplete-part object removed on termination;
 * - part files read in 1 MiB chunks on their way to S3.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Part } from '@aws-sdk/client-s3';
import { S3Store, type MetadataValue, type Options } from '@tus/s3-store';
import { TUS_RESUMABLE, Upload } from '@tus/utils';
import { FreightError, gone } from '../errors.js';
import { isNoSuchUpload, objectSize } from '../storage/s3.js';
import { planPartSize } from '../uploads/planner.js';
import type { StoredPart } from '../uploads/parts.js';
import type { UploadService } from '../uploads/service.js';

export interface FreightS3StoreOptions extends Options {
  uploads: UploadService;
  /** Deferred-length uploads are planned as if they were this long. */
  maxUploadSize: number;
}

async function bodySize(body: ReadStream | Readable | Buffer): Promise<number> {
  if (Buffer.isBuffer(body)) return body.length;
  // S3Store hands each part over as a read stream of its temp file.
  const { path } = body as Partial<ReadStream>;
  if (path === undefined) throw new Error('part body is neither a Buffer nor a file stream; its size is unknown');
  return (await stat(path)).size;
}

/** Bytes per read of a part file on its way to S3 (fs streams default to 64 KiB: 128 reads and writes per 8 MiB). */
const PART_READ_CHUNK = 1024 * 1024;

/** The same part file, read in large chunks: fewer system calls on the hottest path of the tus upload. */
function withLargeReads(body: ReadStream | Readable | Buffer): ReadStream | Readable | Buffer {
  const { path } = body as Partial<ReadStream>;
  if (Buffer.isBuffer(body) || path === undefined) return body;
  body.destroy();
  return createReadStream(path, { highWaterMark: PART_READ_CHUNK });
}

function toStoredPart(part: Part): StoredPart {
  return { partNumber: part.PartNumber ?? 0, size: part.Size ?? 0, etag: part.ETag ?? '' };
}

export class FreightS3Store extends S3Store {
  private readonly uploads: UploadService;
  private readonly deferredPlanLength: number;

  constructor({ uploads, maxUploadSize, ...options }: FreightS3StoreOptions) {
    super(options);
    this.uploads = uploads;
    this.deferredPlanLength = maxUploadSize;
  }

  /** max(S3_PART_SIZE, ceil(length / 10,000)); see uploads/planner.ts. */
  protected override calcOptimalPartSize(size?: number): number {
    return planPartSize(size ?? this.deferredPlanLength, this.preferredPartSize);
  }

  /**
   * A zero-byte upload is complete once created, but S3Store only assembles objects in write(), which an empty
   * upload never gets: assemble it here (S3Store stores one empty part for it).
   */
  override async create(upload: Upload): Promise<Upload> {
    const created = await super.create(upload);
    if (created.size === 0) {
      const metadata = await this.getMetadata(created.id);
      await this.finishMultipartUpload(metadata, []);
      await this.completeMetadata(metadata.file);
      await this.clearCache(created.id);
    }
    return created;
  }

  protected override async saveMetadata(upload: Upload, uploadId: string): Promise<void> {
    await super.saveMetadata(upload, uploadId);
    // What was just written is what the next read of the .info object would return: keep it cached.
    await this.cache.set(upload.id, { file: new Upload({ ...upload }), 'upload-id': uploadId, 'tus-version': TUS_RESUMABLE });
    await this.uploads.attachS3Upload(upload.id, uploadId);
  }

  protected override async uploadPart(
    metadata: MetadataValue,
    body: ReadStream | Readable | Buffer,
    partNumber: number,
  ): Promise<string> {
    const size = await bodySize(body);
    const etag = await super.uploadPart(metadata, withLargeReads(body), partNumber);
    await this.uploads.recordStoredPart(metadata.file.id, { partNumber, size, etag });
    return etag;
  }

  protected override async finishMultipartUpload(metadata: MetadataValue, parts: Part[]): Promise<string | undefined> {
    // A zero-byte upload has no parts yet; S3Store stores one empty part itself (recorded by uploadPart above).
    if (parts.length > 0) {
      const upload = await this.uploads.getUploadForStorage(metadata.file.id);
      try {
        // Parts S3 holds but that were never recorded (a crash between the two) are adopted here.
        await this.uploads.mergeStoredParts(upload.id, await this.uploads.verifyParts(upload, parts.map(toStoredPart)));
      } catch (error) {
        if (error instanceof FreightError) await this.uploads.markFailed(upload.id, error.message);
        throw error;
      }
    }
    return super.finishMultipartUpload(metadata, parts);
  }

  /**
   * S3Store derives the offset from the parts, so once every byte is stored the offset equals the length even if
   * the object was never assembled (CompleteMultipartUpload failed, or the process died just before it). A client
   * then sees a finished upload that does not exist. Whenever an upload shows all its bytes but is not recorded
   * as completed, assemble it now (callers hold the upload's lock) and record it.
   */
  override async getUpload(id: string): Promise<Upload> {
    const upload = await super.getUpload(id);
    if (upload.size === undefined || upload.offset !== upload.size) return upload;
    const record = await this.uploads.getUploadForStorage(id);
    if (record.status === 'completed') return upload;
    const metadata = await this.getMetadata(id);
    let parts: Part[] | undefined;
    try {
      parts = await this.retrieveParts(id);
    } catch (error) {
      if (!isNoSuchUpload(error)) throw error;
    }
    if (parts) {
      await this.finishMultipartUpload(metadata, parts);
      await this.completeMetadata(metadata.file);
      await this.clearCache(id);
    } else if ((await objectSize(this.client, this.bucket, id)) !== upload.size) {
      // S3Store takes a missing multipart upload for a finished one; without the object, it was lost.
      const reason = 'the multipart upload no longer exists in storage';
      await this.uploads.markFailed(id, reason);
      throw gone(reason);
    }
    await this.uploads.markCompleted(id, upload.size);
    return upload;
  }

  /** S3Store leaves the incomplete-part object behind on termination; remove it too. */
  override async remove(id: string): Promise<void> {
    await super.remove(id);
    await this.client.deleteObject({ Bucket: this.bucket, Key: this.partKey(id, true) });
  }
}
