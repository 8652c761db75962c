/**
 * The queries of an upload's end: open uploads idle past their expiry (found and expired, never under a held lock),
 * the expiry a signed part extends, and the ended rows the janitor prunes after UPLOAD_RETENTION.
 */
import { and, asc, count, eq, gt, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { rowsOf, type Db } from './client.js';
import { isUploadId } from './ids.js';
import { fileUploads, type FileUpload, type WebhookEvent, webhookOutbox } from './schema.js';
import { ENDED_LIST, OPEN_LIST, reporting, rowLockKey } from './statements.js';
import { TRANSITIONS } from '../lifecycle.js';

export class RetentionRepository {
  constructor(
    private readonly db: Db,
    private readonly webhookEvents: ReadonlySet<WebhookEvent>,
  ) {}

  /**
   * Open uploads of `protocol` past their expiry as of `now`, that no request holds to complete (locked_until
   * ahead): the candidates for expireIdleUploads, by id, a page of `limit` after `after` (all when no limit).
   */
  async listExpiredOpenUploads(
    protocol: FileUpload['protocol'],
    now: Date,
    page: { limit?: number; after?: string | undefined } = {},
  ): Promise<FileUpload[]> {
    const query = this.db
      .select()
      .from(fileUploads)
      .where(
        and(
          this.pastExpiry(now),
          eq(fileUploads.protocol, protocol),
          page.after ? gt(fileUploads.id, page.after) : undefined,
        ),
      )
      .orderBy(asc(fileUploads.id));
    return page.limit === undefined ? query : query.limit(page.limit);
  }

  /**
   * Those of `ids` still open and past their expiry as of `now`, marked expired in one statement; returns them.
   * Left alone: an upload a request holds to complete it (locked_until ahead), and one whose tus lock any session
   * holds, on any instance (a writer is at it): the statement takes the same advisory lock itself, without
   * waiting (pg_try_advisory_xact_lock, released when it commits), so a writer that asks for it meanwhile waits
   * and then finds the upload expired, before it writes a byte. Keep `ids` short: each takes a lock until commit.
   */
  async expireIdleUploads(ids: readonly string[], now: Date): Promise<FileUpload[]> {
    const valid = ids.filter(isUploadId);
    if (valid.length === 0) return [];
    return reporting(this.db, this.webhookEvents, TRANSITIONS.expire.event, (db) =>
      db
        .update(fileUploads)
        .set({ status: TRANSITIONS.expire.to, lockedUntil: null })
        .where(and(inArray(fileUploads.id, valid), this.pastExpiry(now), sql`pg_try_advisory_xact_lock(${rowLockKey})`))
        .returning(),
    );
  }

  /** The upload lives at least until `until` (a direct upload's part was signed): its expiry never moves back. */
  async extendExpiry(id: string, until: Date): Promise<void> {
    await this.db
      .update(fileUploads)
      .set({ expiresAt: sql`greatest(${fileUploads.expiresAt}, ${until.toISOString()}::timestamptz)` })
      .where(and(eq(fileUploads.id, id), inArray(fileUploads.status, OPEN_LIST)));
  }

  /**
   * Those of `ids` whose tus lock a session holds now, on any instance (a writer is at them): the same probe as
   * expireIdleUploads', taken and let go within this statement.
   */
  async heldByWriters(ids: readonly string[]): Promise<string[]> {
    const valid = ids.filter(isUploadId);
    if (valid.length === 0) return [];
    const rows = await this.db
      .select({ id: fileUploads.id })
      .from(fileUploads)
      .where(and(inArray(fileUploads.id, valid), sql`not pg_try_advisory_xact_lock(${rowLockKey})`));
    return rows.map((row) => row.id);
  }

  private pastExpiry(now: Date) {
    return and(
      inArray(fileUploads.status, OPEN_LIST),
      lt(fileUploads.expiresAt, now),
      or(isNull(fileUploads.lockedUntil), lt(fileUploads.lockedUntil, now)),
    );
  }

  /**
   * Uploads that ended without completing (aborted, expired, lost, rejected) before `before`, by their last change
   * (the end: nothing changes an ended row), oldest first: the janitor prunes them.
   */
  async listPrunableUploads(before: Date, limit: number): Promise<FileUpload[]> {
    return this.db
      .select()
      .from(fileUploads)
      .where(this.prunable(before))
      .orderBy(asc(fileUploads.updatedAt), asc(fileUploads.id))
      .limit(limit);
  }

  async countPrunableUploads(before: Date): Promise<number> {
    const [counted] = await this.db.select({ n: count() }).from(fileUploads).where(this.prunable(before));
    return counted?.n ?? 0;
  }

  /**
   * Deletes those of `ids` that still ended before `before`, with their part rows (on delete cascade) and their
   * webhook events, except events still to be delivered (their payload carries the upload). Returns how many.
   */
  async deleteEndedUploads(ids: readonly string[], before: Date): Promise<number> {
    const valid = ids.filter(isUploadId);
    if (valid.length === 0) return 0;
    const result = await this.db.execute(sql`
      with pruned as (
        delete from ${fileUploads}
        where ${and(inArray(fileUploads.id, valid), this.prunable(before))}
        returning id
      ), events as (
        delete from ${webhookOutbox}
        where upload_id in (select id from pruned)
          and (delivered_at is not null or next_attempt_at = 'infinity'::timestamptz)
      )
      select count(*)::int as n from pruned`);
    return rowsOf<{ n: number }>(result)[0]?.n ?? 0;
  }

  private prunable(before: Date) {
    return and(inArray(fileUploads.status, ENDED_LIST), lt(fileUploads.updatedAt, before));
  }
}
