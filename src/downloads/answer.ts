/**
 * The answer to a download (GET /files/:id and GET|HEAD /api/uploads/:id/download) of the caller's completed
 * upload: a redirect to S3, or the file streamed with Range support. Always data, never a type a browser would
 * render (the client chose that type), under the upload's exact file name (RFC 6266 filename*).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FileUpload } from '../db/schema.js';
import { conflict, rangeNotSatisfiable } from '../errors.js';
import { attachment } from '../http/content-disposition.js';
import { STORED_CONTENT_TYPE } from '../storage/multipart.js';
import { rangeOf } from './ranges.js';
import type { DownloadStorage } from './storage.js';
import { isCompleted } from '../lifecycle.js';

/** The caller's own bytes: no shared cache may keep them, and no browser may sniff a type into them. */
const PRIVATE = { 'Cache-Control': 'private, no-store', 'X-Content-Type-Options': 'nosniff' };

export async function answerDownload(
  storage: DownloadStorage,
  upload: FileUpload,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  if (!isCompleted(upload.status)) throw conflict('the upload is not complete yet; download it once it is');
  const size = upload.totalSize ?? 0;
  const headers: Record<string, string> = {
    ...PRIVATE,
    'Content-Type': STORED_CONTENT_TYPE,
    'Content-Disposition': attachment(upload.filename),
    'Accept-Ranges': 'bytes',
    // A completed upload never changes: its id is a strong validator (If-Range).
    ETag: `"${upload.id}"`,
    ...(upload.completedAt ? { 'Last-Modified': upload.completedAt.toUTCString() } : {}),
  };
  // HEAD is answered from the database on every storage: what a GET would bring, and that ranges work.
  if (storage.kind === 'redirect' && request.method !== 'HEAD') {
    return reply
      .code(302)
      .headers({ ...PRIVATE, Location: await storage.url(upload) })
      .send();
  }
  const ifRange = request.headers['if-range'];
  const answer = rangeOf(request.headers.range, size, {
    header: Array.isArray(ifRange) ? ifRange[0] : ifRange,
    etag: headers.ETag!,
  });
  if (answer.kind === 'unsatisfiable') throw rangeNotSatisfiable(size);
  const range = answer.kind === 'part' ? answer.range : undefined;
  if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
  headers['Content-Length'] = String(range ? range.end - range.start + 1 : size);
  reply.code(range ? 206 : 200).headers(headers);
  if (request.method === 'HEAD' || storage.kind === 'redirect') return reply.send();
  return reply.send(await storage.open(upload, range));
}
