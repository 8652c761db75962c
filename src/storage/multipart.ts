/**
 * The S3 multipart operations the direct path needs, behind one small interface. Everything S3-specific about
 * them (paging, error names of different servers) stays here.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  ListPartsCommand,
  PutObjectTaggingCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { ObjectShape } from '../db/schema.js';
import { isNoSuchUpload } from '../errors.js';
import { objectHeaders } from './object-headers.js';
import { objectSize } from './s3.js';

export { STORED_CONTENT_TYPE } from './object-headers.js';

/** A part as S3 lists it (ListParts), and as a completion names it. */
export interface StoredPart {
  partNumber: number;
  size: number;
  etag: string;
}

export interface MultipartStorage {
  readonly bucket: string;
  /**
   * Without options: an object of no type or name (staging). With them: the upload's object, as its pre-create
   * hook shaped it, else a download of `filename` (object-headers.ts).
   */
  create(key: string, options?: NewObject): Promise<string>;
  /** Every part S3 holds (all pages); undefined when the multipart upload no longer exists. */
  listParts(key: string, uploadId: string): Promise<StoredPart[] | undefined>;
  complete(key: string, uploadId: string, parts: readonly StoredPart[]): Promise<{ location: string }>;
  /** Idempotent: aborting an upload that is already gone succeeds. */
  abort(key: string, uploadId: string): Promise<void>;
  /** The object's length, or undefined when there is no such object. */
  objectSize(key: string): Promise<number | undefined>;
  /** Removes the object (a missing one is fine). */
  removeObject(key: string): Promise<void>;
  /** Sets the object's tags (replacing any): S3 applies x-amz-tagging at creation, Ceph RGW 16 not for multipart. */
  tag(key: string, tags: Readonly<Record<string, string>>): Promise<void>;
  objectUrl(key: string): string;
}

/** The object an upload becomes: its client's file name (null: none) and what its pre-create hook shaped. */
export interface NewObject {
  filename: string | null;
  shape?: ObjectShape | null;
}

export class S3MultipartStorage implements MultipartStorage {
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    private readonly endpoint: string | undefined,
  ) {}

  async create(key: string, options?: NewObject): Promise<string> {
    const created = await this.client.send(
      new CreateMultipartUploadCommand({
        Bucket: this.bucket,
        Key: key,
        ...(options && objectHeaders(options.filename, options.shape)),
      }),
    );
    if (!created.UploadId) throw new Error('CreateMultipartUpload answered without an UploadId');
    return created.UploadId;
  }

  async listParts(key: string, uploadId: string): Promise<StoredPart[] | undefined> {
    const parts: StoredPart[] = [];
    let marker: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListPartsCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            PartNumberMarker: marker,
            MaxParts: 1000,
          }),
        );
        for (const part of page.Parts ?? []) {
          parts.push({ partNumber: part.PartNumber ?? 0, size: part.Size ?? 0, etag: part.ETag ?? '' });
        }
        marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
      } while (marker);
    } catch (error) {
      if (isNoSuchUpload(error)) return undefined;
      throw error;
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  async complete(key: string, uploadId: string, parts: readonly StoredPart[]): Promise<{ location: string }> {
    const completed = await this.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.partNumber, ETag: part.etag })) },
      }),
    );
    return { location: completed.Location || this.objectUrl(key) };
  }

  async abort(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (error) {
      if (!isNoSuchUpload(error)) throw error;
    }
  }

  objectSize(key: string): Promise<number | undefined> {
    return objectSize(this.client, this.bucket, key);
  }

  async removeObject(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async tag(key: string, tags: Readonly<Record<string, string>>): Promise<void> {
    await this.client.send(
      new PutObjectTaggingCommand({
        Bucket: this.bucket,
        Key: key,
        Tagging: { TagSet: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
      }),
    );
  }

  objectUrl(key: string): string {
    const base = this.endpoint ?? `https://${this.bucket}.s3.amazonaws.com`;
    // Each segment encoded, the slashes kept: a key with "directories" reads as the path it is.
    const path = key.split('/').map(encodeURIComponent).join('/');
    return this.endpoint ? `${base}/${this.bucket}/${path}` : `${base}/${path}`;
  }
}
