/**
 * The statement of a small upload stored whole (src/tus/s3/whole.ts): its offset, its one part and its completion
 * at once, instead of an offset advance, a parts check and a transition.
 */
import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from './client.js';
import { fileUploads, uploadParts, webhookOutbox, type WebhookEvent } from './schema.js';
import { uploadSnapshot } from './webhook-outbox.js';
import { TRANSITIONS, type Transition } from '../lifecycle.js';

/** What completeWhole records: the object S3 now holds (one part), its digest and the digest's state at its end. */
export interface WholeCompletion {
  size: number;
  /** The object's ETag, recorded as part 1's. */
  etag: string;
  sha256: string | null;
  hashState: string | null;
  completedAt: Date;
}

export class WholeUploadRepository {
  constructor(
    private readonly db: Db,
    /** The webhook events written (WEBHOOK_EVENTS). */
    private readonly webhookEvents: ReadonlySet<WebhookEvent>,
  ) {}

  /**
   * One statement for a tus upload whose every byte one request brought and S3 stored as one object (the
   * small-upload path, src/tus/s3/whole.ts): the offset moves from 0 to `size`, part 1 is recorded, the upload is
   * completed with its digest, and (webhooks on) its upload.completed event is written. Only from offset 0 of an
   * open upload: false when another request moved it or it ended meanwhile (nothing changed).
   */
  async completeWhole(id: string, whole: WholeCompletion): Promise<boolean> {
    const { size, etag, sha256, hashState, completedAt } = whole;
    const { from, to, event } = TRANSITIONS.complete as Transition;
    const fromSql = sql.join(
      from.map((status) => sql`${status}::upload_status`),
      sql`, `,
    );
    // The event's snapshot is read from the statement's own snapshot, where the part row is not yet: its count is
    // the one part this statement records.
    const events =
      event && this.webhookEvents.has(event)
        ? sql`, events as (
            insert into ${webhookOutbox} (event, upload_id, payload)
            select ${event}::webhook_event, moved.id, ${uploadSnapshot('moved')} || jsonb_build_object('parts_count', 1)
            from moved
            returning id)`
        : sql``;
    const result = await this.db.execute(sql`
      with moved as (
        update ${fileUploads}
        set stored_offset = ${size}, bytes_received = ${size}, total_size = ${size}, staging = null,
            hash_state = ${hashState}::text, sha256 = ${sha256}::text, status = ${to}::upload_status,
            completed_at = ${completedAt.toISOString()}::timestamptz, locked_until = null, error = null,
            updated_at = now()
        where id = ${id} and stored_offset = 0 and total_size = ${size} and status in (${fromSql})
        returning *
      ), recorded as (
        insert into ${uploadParts} (upload_id, part_number, size, etag, status, hash_state)
        select id, 1, ${size}::bigint, ${etag}::text, 'stored'::part_status, ${hashState}::text from moved
        on conflict (upload_id, part_number) do update
          set size = excluded.size, etag = excluded.etag, status = excluded.status, hash_state = excluded.hash_state,
              updated_at = now()
      )${events}
      select count(*)::int as moved from moved`);
    return (rowsOf<{ moved: number }>(result)[0]?.moved ?? 0) > 0;
  }
}
