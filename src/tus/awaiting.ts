/**
 * What a tus answer says of an upload awaiting approval (WEBHOOK_PRE_FINISH). Its bytes are all in, so the last
 * PATCH is 204 with the final offset and a resume check 200 with Upload-Offset = Upload-Length: tus-js-client and
 * Uppy take either as done (neither has a notion of "stored, not yet accepted", and one that was told to retry
 * would only HEAD, see the offset at the length, and stop). `Freight-Upload-Status: awaiting_approval` tells a
 * client that reads it (tus-js-client's onSuccess gets the last response) that the receiver has not said yes yet:
 * the application hears the outcome from its webhook, the client from GET /api/uploads/:id.
 */
import type { FileUpload } from '../db/schema.js';

export const UPLOAD_STATUS_HEADER = 'Freight-Upload-Status';

export const awaitingHeaders = (upload: FileUpload): Record<string, string> =>
  upload.status === 'awaiting_approval' ? { [UPLOAD_STATUS_HEADER]: 'awaiting_approval' } : {};
