/**
 * The body of an event webhook: `{ "event": "upload.completed", "upload": <the upload as GET /api/uploads/:id shows
 * it, at the moment of the change>, "occurredAt": "<ISO 8601>", "id": <the outbox id> }`. The events of one upload
 * get increasing ids in the order of its changes (each change's statement waits for the row lock of the one before,
 * and takes its id after); across uploads ids say nothing of order.
 */
import { uploadDetail, type UploadDetail } from '../api/views.js';
import type { WebhookEvent, WebhookOutboxRow } from '../db/schema.js';
import { uploadOfSnapshot } from '../db/webhook-outbox.js';

export interface EventBody {
  event: WebhookEvent;
  upload: UploadDetail;
  occurredAt: string;
  id: number;
}

export function eventBody(row: WebhookOutboxRow): EventBody {
  const { upload, partsCount } = uploadOfSnapshot(row.payload);
  return {
    event: row.event,
    upload: uploadDetail(upload, partsCount),
    occurredAt: row.createdAt.toISOString(),
    id: row.id,
  };
}
