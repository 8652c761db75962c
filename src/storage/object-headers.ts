/**
 * What a new object carries beyond its bytes, for CreateMultipartUpload and PutObject alike: served as a download
 * of the upload's file name, typed application/octet-stream, unless the pre-create hook shaped it (object_shape,
 * checked in src/webhooks/object-shape.ts): then its Content-Type, Content-Disposition, storage class, tags and
 * user metadata. Nothing a client sent reaches the object but its file name, and that only inside an RFC 6266
 * `attachment` (a client's type or metadata never: a bucket served to browsers would serve a client's text/html as
 * a page of its origin).
 */
import type { StorageClass } from '@aws-sdk/client-s3';
import type { ObjectShape } from '../db/schema.js';
import { attachment } from '../http/content-disposition.js';

/** What a stored upload is served as, unless the hook says otherwise: bytes, to download. */
export const STORED_CONTENT_TYPE = 'application/octet-stream';

export interface ObjectHeaders {
  ContentType: string;
  ContentDisposition: string;
  StorageClass?: StorageClass;
  /** x-amz-tagging: the tags as a URL query string. */
  Tagging?: string;
  Metadata?: Record<string, string>;
}

/** The tag set as x-amz-tagging carries it ("encoded as URL query parameters"). */
export const taggingHeader = (tags: Readonly<Record<string, string>>): string =>
  Object.entries(tags)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
    .join('&');

export function objectHeaders(filename: string | null, shape: ObjectShape | null | undefined): ObjectHeaders {
  const headers: ObjectHeaders = {
    ContentType: shape?.contentType ?? STORED_CONTENT_TYPE,
    ContentDisposition: shape?.contentDisposition ?? attachment(filename),
  };
  if (shape?.storageClass) headers.StorageClass = shape.storageClass as StorageClass;
  if (shape?.tags && Object.keys(shape.tags).length > 0) headers.Tagging = taggingHeader(shape.tags);
  if (shape?.metadata && Object.keys(shape.metadata).length > 0) headers.Metadata = { ...shape.metadata };
  return headers;
}
