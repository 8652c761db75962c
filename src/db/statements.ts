/**
 * What the repositories' statements share: the lifecycle's groups as SQL guards, the key of a row's tus lock, and
 * the webhook outbox written in the same statement as the change it reports.
 */
import { type getTableColumns, sql } from 'drizzle-orm';
import type { TypedQueryBuilder } from 'drizzle-orm/query-builders/query-builder';
import type { Db } from './client.js';
import { fileUploads, type FileUpload, type WebhookEvent, webhookOutbox } from './schema.js';
import { uploadSnapshot } from './webhook-outbox.js';
import { ENDED, OPEN } from '../lifecycle.js';

/** The key of the row's tus lock, in SQL: uploadLockKey (ids.ts) of its id, the first 64 bits of the UUID. */
export const rowLockKey = sql`('x' || substr(replace(${fileUploads.id}::text, '-', ''), 1, 16))::bit(64)::bigint`;

/** The lifecycle's groups as the guards take them (src/lifecycle.ts decides what is in them). */
export const OPEN_LIST = [...OPEN];
export const ENDED_LIST = [...ENDED];
export const OPEN_SQL = sql`(${sql.join(
  OPEN.map((status) => sql`${status}::upload_status`),
  sql`, `,
)})`;
/** A statement that changes upload rows and returns them (an INSERT or UPDATE … RETURNING). */
export type UploadChange = TypedQueryBuilder<ReturnType<typeof getTableColumns<typeof fileUploads>>> &
  PromiseLike<FileUpload[]>;

/**
 * Runs `change` and returns the rows it changed; when `event` is one of those `written` (webhooks on, and
 * WEBHOOK_EVENTS names it), in the same statement, writes it to the outbox for each of them (a CTE: nothing is
 * written when the guarded change changed nothing).
 */
export async function reporting(
  db: Db,
  written: ReadonlySet<WebhookEvent>,
  event: WebhookEvent | undefined,
  change: (db: Db) => UploadChange,
): Promise<FileUpload[]> {
  if (event === undefined || !written.has(event)) return change(db);
  const changed = db.$with('changed').as(change(db));
  const events = db.$with('events', { id: webhookOutbox.id }).as(sql`
    insert into ${webhookOutbox} (event, upload_id, payload)
    select ${event}::webhook_event, changed.id, ${uploadSnapshot('changed')} from changed
    returning id`);
  return db.with(changed, events).select().from(changed);
}

/** The class of the per-user advisory locks taken to count open uploads (two int4 keys: class, hash of the user). */
export const OPEN_UPLOADS_LOCK = 0x4f50454e; // "OPEN"
