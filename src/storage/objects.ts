/**
 * The object operations of the tus path, over the multipart operations both paths share (multipart.ts):
 * parts and small objects sent from temp files, objects read back, parts copied inside S3, prefixes removed.
 *
 * A body read from a file is sent by a client without SDK retries (the SDK cannot replay a consumed stream):
 * it is retried here, from the file, when the failure is transient.
 */
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { isTransientStorageError } from '../errors.js';
import type { NewObject } from './multipart.js';
import { objectHeaders, taggingHeader } from './object-headers.js';

/** Bytes to send: a temp file (read in 1 MiB chunks) or, for a few KiB, memory. */
export interface FileBody {
  path: string;
  size: number;
}
export type Body = FileBody | Buffer;

const READ_CHUNK = 1024 * 1024;
const ATTEMPTS = 3;
const BACKOFF_MS = [250, 1_000];

/**
 * What the SDK reads: memory, or the temp file opened before the send. Opened first, a file that is gone fails this
 * send; opened by the stream itself, it failed later, after a send that had already failed and let the stream go,
 * as an error nobody listened to: an uncaught exception (seen once in the datastore contract: ENOENT on a part file
 * removed while its stream was still opening).
 */
async function bodyStream(body: Body): Promise<Readable | Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const handle = await open(body.path, 'r');
  return handle.createReadStream({ highWaterMark: READ_CHUNK });
}
const bodySize = (body: Body): number => (Buffer.isBuffer(body) ? body.length : body.size);

export class S3Objects {
  constructor(
    /** For everything but bodies from files: the SDK's own retries apply. */
    private readonly client: S3Client,
    /** For bodies from files: no SDK retries (see sendBody). */
    private readonly bodyClient: S3Client,
    readonly bucket: string,
  ) {}

  /** Sends `body` with `send`, again from the start of the file after a transient failure. */
  private async sendBody<T>(
    body: Body,
    signal: AbortSignal | undefined,
    send: (stream: Readable | Buffer) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const stream = await bodyStream(body);
      try {
        return await send(stream);
      } catch (error) {
        if (attempt >= ATTEMPTS || signal?.aborted || !isTransientStorageError(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, BACKOFF_MS[attempt - 1]));
      } finally {
        if (!Buffer.isBuffer(stream)) stream.destroy();
      }
    }
  }

  /** UploadPart; returns the part's ETag. */
  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Body,
    signal?: AbortSignal,
  ): Promise<string> {
    return this.sendBody(body, signal, async (stream) => {
      const sent = await this.bodyClient.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: stream,
          ContentLength: bodySize(body),
        }),
        { abortSignal: signal },
      );
      if (!sent.ETag) throw new Error(`UploadPart ${partNumber} of ${key} answered without an ETag`);
      return sent.ETag;
    });
  }

  /** Without `object`: bytes of no type or name (staging); with it, an upload's object (object-headers.ts). */
  async putObject(key: string, body: Body, signal?: AbortSignal, object?: NewObject): Promise<void> {
    const headers = object && objectHeaders(object.filename, object.shape);
    await this.sendBody(body, signal, (stream) =>
      this.bodyClient.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: stream,
          ContentLength: bodySize(body),
          ...headers,
        }),
        { abortSignal: signal },
      ),
    );
  }

  /**
   * A whole upload as one object (the small-upload path): with the headers CreateMultipartUpload gives an upload's
   * object (object-headers.ts: its name and type, or what the pre-create hook shaped), and `tags` (replacing the
   * shape's, which they should include) in the same call. Returns its ETag.
   */
  async putWhole(
    key: string,
    body: Buffer,
    object: NewObject,
    tags?: Readonly<Record<string, string>>,
    signal?: AbortSignal,
  ): Promise<string> {
    const headers = objectHeaders(object.filename, object.shape);
    if (tags !== undefined) {
      if (Object.keys(tags).length > 0) headers.Tagging = taggingHeader(tags);
      else delete headers.Tagging;
    }
    const sent = await this.sendBody(body, signal, (stream) =>
      this.bodyClient.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: stream, ContentLength: body.length, ...headers }),
        { abortSignal: signal },
      ),
    );
    if (!sent.ETag) throw new Error(`PutObject ${key} answered without an ETag`);
    return sent.ETag;
  }

  /** The object's bytes as a stream (a stall half-way fails it after S3_REQUEST_TIMEOUT). */
  async getObject(key: string, signal?: AbortSignal): Promise<Readable> {
    const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      abortSignal: signal,
    });
    if (!object.Body) throw new Error(`GetObject ${key} answered without a body`);
    return object.Body as Readable;
  }

  /**
   * UploadPartCopy of a whole object, or of bytes [first, last] of it: the bytes move inside S3, not through this
   * server. Returns the ETag.
   */
  async copyPart(
    key: string,
    uploadId: string,
    partNumber: number,
    sourceKey: string,
    signal?: AbortSignal,
    range?: { first: number; last: number },
  ): Promise<string> {
    const copied = await this.client.send(
      new UploadPartCopyCommand({
        Bucket: this.bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        CopySource: `${this.bucket}/${encodeURIComponent(sourceKey)}`,
        ...(range && { CopySourceRange: `bytes=${range.first}-${range.last}` }),
      }),
      { abortSignal: signal },
    );
    const etag = copied.CopyPartResult?.ETag;
    if (!etag) throw new Error(`UploadPartCopy ${partNumber} of ${key} answered without an ETag`);
    return etag;
  }

  /** Sets the object's tags (replacing any). */
  async tag(key: string, tags: Record<string, string>): Promise<void> {
    await this.client.send(
      new PutObjectTaggingCommand({
        Bucket: this.bucket,
        Key: key,
        Tagging: { TagSet: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
      }),
    );
  }

  /** Removes the objects (missing ones are fine). */
  async deleteObjects(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
    }
  }

  /** Removes every object whose key starts with `prefix`. */
  async deletePrefix(prefix: string): Promise<void> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      await this.deleteObjects((page.Contents ?? []).flatMap((object) => (object.Key ? [object.Key] : [])));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
}
