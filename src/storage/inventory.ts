/**
 * What the bucket holds under S3_KEY_PREFIX (the janitor's whole world: nothing outside the prefix is ever
 * listed, so nothing outside it is ever removed), listed for the janitor: every multipart upload in progress, and
 * every object. Every listing reads all its pages, a page (of up to 1,000 entries) at a time, each request bounded
 * by the S3 client's timeouts.
 */
import { ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';

export interface ListedMultipartUpload {
  key: string;
  uploadId: string;
  /** When S3 says the multipart upload was created (undefined if it does not say). */
  initiated: Date | undefined;
}

export interface ListedObject {
  key: string;
  lastModified: Date | undefined;
}

export class BucketInventory {
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    /** S3_KEY_PREFIX ('' : the whole bucket). */
    readonly prefix: string = '',
  ) {}

  /** Every multipart upload in progress under the prefix (ListMultipartUploads, all pages), a page at a time. */
  async *multipartUploads(): AsyncGenerator<ListedMultipartUpload[]> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.client.send(
        new ListMultipartUploadsCommand({
          Bucket: this.bucket,
          Prefix: this.prefix || undefined,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
          MaxUploads: 1000,
        }),
      );
      yield (page.Uploads ?? []).flatMap((upload) =>
        upload.Key && upload.UploadId
          ? [{ key: upload.Key, uploadId: upload.UploadId, initiated: upload.Initiated }]
          : [],
      );
      if (!page.IsTruncated) return;
      // A truncated page without markers would list the same page forever.
      if (!page.NextKeyMarker && !page.NextUploadIdMarker)
        throw new Error('ListMultipartUploads was truncated without a marker');
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /** Every object under the prefix (ListObjectsV2, all pages), a page at a time. */
  async *objects(): AsyncGenerator<ListedObject[]> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix || undefined, ContinuationToken: token }),
      );
      yield (page.Contents ?? []).flatMap((object) =>
        object.Key ? [{ key: object.Key, lastModified: object.LastModified }] : [],
      );
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
}
