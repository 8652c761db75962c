/**
 * What the bucket holds, listed for the janitor: every multipart upload in progress, the "directories" of staged
 * bytes (`<key>.staging/`), and the objects under one of them. Every listing reads all its pages, a page (of up to
 * 1,000 entries) at a time, each request bounded by the S3 client's timeouts.
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
  ) {}

  /** Every multipart upload in progress in the bucket (ListMultipartUploads, all pages), a page at a time. */
  async *multipartUploads(): AsyncGenerator<ListedMultipartUpload[]> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.client.send(
        new ListMultipartUploadsCommand({
          Bucket: this.bucket,
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

  /**
   * The top-level "directories" of the bucket whose names end with `suffix` (ListObjectsV2 with the delimiter
   * "/", all pages), a page at a time. S3 lists every top-level object along the way: one request per 1,000 keys.
   */
  async *prefixesEndingWith(suffix: string): AsyncGenerator<string[]> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Delimiter: '/', ContinuationToken: token }),
      );
      yield (page.CommonPrefixes ?? []).flatMap((common) => (common.Prefix?.endsWith(suffix) ? [common.Prefix] : []));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Every object whose key starts with `prefix` (all pages). */
  async objectsUnder(prefix: string): Promise<ListedObject[]> {
    const objects: ListedObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? [])
        if (object.Key) objects.push({ key: object.Key, lastModified: object.LastModified });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects;
  }
}
