/**
 * The queries of the pre-finish gate (uploads awaiting approval, claimed for one ask at a time) and of upload.progress
 * events (written coalesced): UploadRepository.approvals.
 */
import { and, asc, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { isUploadId } from './ids.js';
import { rowsOf, type Db } from './client.js';
import { fileUploads, webhookOutbox, type FileUpload, type WebhookEvent } from './schema.js';
import { uploadSnapshot } from './webhook-outbox.js';

export class ApprovalQueries {
  constructor(
    private readonly db: Db,
    /** The events WEBHOOK_EVENTS chooses (none without webhooks). */
    private readonly webhookEvents: ReadonlySet<WebhookEvent>,
  ) {}

  /**
   * An upload.progress event for the upload as it is now, if it is still uploading short of its length; an older
   * progress event of it not delivered yet is dropped in the same statement (coalesced: a receiver that is slow
   * or down never has more than one waiting per upload; one already on its way is still sent). The row is locked
   * (`for update`) so that the event takes its id after any change being made to the upload: the events of one
   * upload stay in the order of its changes. False when nothing was written.
   */
  async reportProgress(id: string): Promise<boolean> {
    if (!this.webhookEvents.has('upload.progress') || !isUploadId(id)) return false;
    const result = await this.db.execute(sql`
      with progressed as (
        select * from ${fileUploads}
        where id = ${id} and status = 'uploading' and (total_size is null or bytes_received < total_size)
        for update
      ), dropped as (
        delete from ${webhookOutbox}
        where upload_id in (select id from progressed) and event = 'upload.progress' and delivered_at is null
      ), written as (
        insert into ${webhookOutbox} (event, upload_id, payload)
        select 'upload.progress'::webhook_event, progressed.id, ${uploadSnapshot('progressed')} from progressed
        returning id
      )
      select count(*)::int as n from written`);
    return (rowsOf<{ n: number }>(result)[0]?.n ?? 0) > 0;
  }

  /**
   * Up to `limit` uploads awaiting approval whose next ask is due as of `now` (locked_until passed), each set aside
   * until `leaseUntil` (no other instance asks meanwhile; an ask cut short by a crash is made again after it).
   * `for update skip locked`: instances claiming at once get different uploads.
   */
  async claimAwaitingApproval(now: Date, leaseUntil: Date, limit: number): Promise<FileUpload[]> {
    const due = this.db
      .select({ id: fileUploads.id })
      .from(fileUploads)
      .where(
        and(
          eq(fileUploads.status, 'awaiting_approval'),
          or(isNull(fileUploads.lockedUntil), lt(fileUploads.lockedUntil, now)),
        ),
      )
      .orderBy(asc(fileUploads.lockedUntil))
      .limit(limit)
      .for('update', { skipLocked: true });
    return this.db
      .update(fileUploads)
      .set({ lockedUntil: leaseUntil, updatedAt: sql`${fileUploads.updatedAt}` })
      .where(and(inArray(fileUploads.id, due), eq(fileUploads.status, 'awaiting_approval')))
      .returning();
  }

  /**
   * The upload still awaits approval: asked again from `at`, `reason` kept (the API shows it). Its updated_at stays
   * when it started waiting (a new ask is no change of the upload). False when it no longer awaits approval.
   */
  async askAgainAt(id: string, at: Date, reason: string): Promise<boolean> {
    const rows = await this.db
      .update(fileUploads)
      .set({ lockedUntil: at, error: reason, updatedAt: sql`${fileUploads.updatedAt}` })
      .where(and(eq(fileUploads.id, id), eq(fileUploads.status, 'awaiting_approval')))
      .returning({ id: fileUploads.id });
    return rows.length > 0;
  }
}
