/**
 * Where a completed upload's bytes are fetched from. On S3 the client is sent to a short-lived presigned GET of
 * the object (S3 then serves ranges, and the bytes never pass through Freight); on the local file store Freight
 * streams the file itself.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { FileUpload } from '../db/schema.js';
import { gone } from '../errors.js';
import { attachment } from '../http/content-disposition.js';
import { STORED_CONTENT_TYPE } from '../storage/multipart.js';
import type { ByteRange } from './ranges.js';

export type DownloadStorage = PresignedDownloads | FileDownloads;

export class PresignedDownloads {
  readonly kind = 'redirect';

  constructor(
    /** A client for the endpoint clients reach (S3_PUBLIC_ENDPOINT), that presigns and never calls S3. */
    private readonly client: S3Client,
    private readonly bucket: string,
    readonly expiresInSeconds: number,
    /** The signing clock (tests move it: a URL signed in the past has expired). */
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * A GET URL that S3 answers as data under the upload's name, whatever type the object or the client claims:
   * S3 sets Content-Type and Content-Disposition from the signed response-* parameters. It is valid from now
   * for `expiresInSeconds`, for this object only.
   */
  url(upload: FileUpload): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: upload.storageKey,
      ResponseContentType: STORED_CONTENT_TYPE,
      ResponseContentDisposition: attachment(upload.filename),
    });
    return getSignedUrl(this.client, command, { expiresIn: this.expiresInSeconds, signingDate: this.now() });
  }
}

export class FileDownloads {
  readonly kind = 'stream';

  /** `directory`: the tus file store's (DATA_DIR/files), where each upload is the file named by its key. */
  constructor(private readonly directory: string) {}

  /** The file, opened before anything is answered (so a missing file is an error answer, not a cut stream). */
  async open(upload: FileUpload, range: ByteRange | undefined): Promise<Readable> {
    let handle: FileHandle;
    try {
      handle = await open(path.join(this.directory, upload.storageKey), 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw gone('the upload is no longer in storage');
      throw error;
    }
    return handle.createReadStream(range ? { start: range.start, end: range.end } : {});
  }
}
