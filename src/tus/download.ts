/**
 * GET /files/:id: the bytes of the caller's completed upload, streamed from storage, served as data (never as a
 * type a browser would render: the client chose that type) under its file name, whatever characters it has.
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FileUpload } from '../db/schema.js';
import { conflict } from '../errors.js';
import { attachment } from '../http/content-disposition.js';
import type { UploadService } from '../uploads/service.js';
import type { FreightStore } from './upload-record.js';

export interface Download {
  upload: FileUpload;
  body: Readable;
}

/** Checks and opens the download; every refusal (404, 410, 409) happens here, before anything is sent. */
export async function openDownload(deps: { uploads: UploadService; store: FreightStore }, userId: string, id: string): Promise<Download> {
  const upload = await deps.uploads.getOwnedLive(userId, id, 'tus');
  if (upload.status !== 'completed') throw conflict('the upload is not complete yet; download it once it is');
  return { upload, body: await deps.store.read(id) };
}

export async function sendDownload({ upload, body }: Download, response: ServerResponse): Promise<void> {
  response.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(upload.totalSize ?? 0),
    'Content-Disposition': attachment(upload.filename),
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'private, no-store',
  });
  // A client that goes away ends the storage stream too: pipeline destroys both sides on either's failure.
  await pipeline(body, response).catch(() => {});
}
