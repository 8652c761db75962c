/**
 * The resume check (HEAD) answered from Postgres alone, when the record knows the durable offset: no lock, no
 * storage request. Otherwise (a write in flight or interrupted) the request goes to @tus/server, which asks
 * storage. The answer is the one the tus spec asks of a HEAD response.
 */
import { Metadata, TUS_RESUMABLE } from '@tus/utils';
import type { FileUpload } from '../db/schema.js';
import { knownOffset } from '../uploads/service.js';

export function resumeCheckHeaders(upload: FileUpload): Record<string, string> | undefined {
  const offset = upload.protocol === 'tus' ? knownOffset(upload) : undefined;
  if (offset === undefined) return undefined;
  const headers: Record<string, string> = {
    'Tus-Resumable': TUS_RESUMABLE,
    // "The Server MUST prevent the client and/or proxies from caching the response by adding the
    // Cache-Control: no-store header to the response."
    'Cache-Control': 'no-store',
    // "The Server MUST always include the Upload-Offset header in the response for a HEAD request, even if the
    // offset is 0, or the upload is already considered completed."
    'Upload-Offset': String(offset),
  };
  // "If the size of the upload is known, the Server MUST include the Upload-Length header in the response."
  // "As long as the length of the upload is not known, the Server MUST set Upload-Defer-Length: 1 in all
  // responses to HEAD requests."
  if (upload.totalSize === null) headers['Upload-Defer-Length'] = '1';
  else headers['Upload-Length'] = String(upload.totalSize);
  // "If an upload contains additional metadata, responses to HEAD requests MUST include the Upload-Metadata
  // header and its value as specified by the Client during the creation."
  if (upload.metadata && Object.keys(upload.metadata).length > 0) {
    headers['Upload-Metadata'] = Metadata.stringify(upload.metadata);
  }
  if (upload.status !== 'completed' && upload.expiresAt) headers['Upload-Expires'] = upload.expiresAt.toUTCString();
  return headers;
}
