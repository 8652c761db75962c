/**
 * The webhook outbox: the queries of the deliverer (claim due events, record the outcome of an attempt) and of the
 * janitor (prune delivered events), and what an event keeps of its upload. Events are written by the upload
 * repository, in the statement that makes the change they report (repository.ts, `reporting`).
 */
import { and, asc, count, eq, getTableColumns, inArray, isNotNull, isNull, lt, lte, sql } from 'drizzle-orm';
import { rowsOf, type Db } from './client.js';
import { fileUploads, uploadParts, webhookOutbox, type FileUpload, type WebhookOutboxRow } from './schema.js';

/**
 * What an event keeps of its upload, as SQL over the row `alias` a statement changed: the row as the statement
 * left it (to_jsonb: snake_case columns), without the internal hashing and staging state, with its stored parts
 * counted (as GET /api/uploads/:id shows them).
 */
export const uploadSnapshot = (
  alias: string,
) => sql`(to_jsonb(${sql.identifier(alias)}) - 'hash_state' - 'staging') || jsonb_build_object(
  'parts_count', (select count(*) from ${uploadParts} p where p.upload_id = ${sql.identifier(alias)}.id and p.status = 'stored'))`;

/** The upload an event's payload (uploadSnapshot) describes, typed as the table's rows are. */
export function uploadOfSnapshot(payload: Record<string, unknown>): { upload: FileUpload; partsCount: number } {
  const upload: Record<string, unknown> = {};
  for (const [field, column] of Object.entries(getTableColumns(fileUploads))) {
    const value = payload[column.name];
    upload[field] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return { upload: upload as FileUpload, partsCount: Number(payload.parts_count ?? 0) };
}

export class WebhookOutbox {
  constructor(private readonly db: Db) {}

  /**
   * Claims up to `limit` events that are due, for one attempt each: each is counted as attempted and set aside
   * for `leaseMs` (past the attempt's timeout), so that no other instance claims it meanwhile, and an attempt cut
   * short by a crash is made again after it. `for update skip locked`: instances claiming at once get different
   * events, none waits for another.
   */
  async claimDue(limit: number, leaseMs: number): Promise<WebhookOutboxRow[]> {
    const due = this.db
      .select({ id: webhookOutbox.id })
      .from(webhookOutbox)
      .where(and(isNull(webhookOutbox.deliveredAt), lte(webhookOutbox.nextAttemptAt, sql`now()`)))
      .orderBy(asc(webhookOutbox.nextAttemptAt), asc(webhookOutbox.id))
      .limit(limit)
      .for('update', { skipLocked: true });
    return this.db
      .update(webhookOutbox)
      .set({
        attempts: sql`${webhookOutbox.attempts} + 1`,
        nextAttemptAt: sql`now() + ${leaseMs} * interval '1 millisecond'`,
      })
      .where(inArray(webhookOutbox.id, due))
      .returning();
  }

  async markDelivered(id: number): Promise<void> {
    await this.db
      .update(webhookOutbox)
      .set({ deliveredAt: sql`now()`, lastError: null })
      .where(eq(webhookOutbox.id, id));
  }

  /** The attempt failed: the next one in `delayMs`, the reason kept. */
  async retryLater(id: number, delayMs: number, error: string): Promise<void> {
    await this.db
      .update(webhookOutbox)
      .set({ nextAttemptAt: sql`now() + ${Math.round(delayMs)} * interval '1 millisecond'`, lastError: error })
      .where(and(eq(webhookOutbox.id, id), isNull(webhookOutbox.deliveredAt)));
  }

  /** No more attempts: the event stays in the outbox, undelivered, with its last error (next_attempt_at 'infinity'). */
  async giveUp(id: number, error: string): Promise<void> {
    await this.db
      .update(webhookOutbox)
      .set({ nextAttemptAt: sql`'infinity'::timestamptz`, lastError: error })
      .where(and(eq(webhookOutbox.id, id), isNull(webhookOutbox.deliveredAt)));
  }

  /** Delivered events older than `before`: deleted (or, with `dryRun`, counted). */
  async pruneDelivered(before: Date, dryRun: boolean): Promise<number> {
    const old = and(isNotNull(webhookOutbox.deliveredAt), lt(webhookOutbox.deliveredAt, before));
    if (dryRun) {
      const [counted] = await this.db.select({ n: count() }).from(webhookOutbox).where(old);
      return counted?.n ?? 0;
    }
    // Counted in the database: a week of events may be millions of rows.
    const result = await this.db.execute(
      sql`with pruned as (delete from ${webhookOutbox} where ${old} returning 1) select count(*)::int as n from pruned`,
    );
    return rowsOf<{ n: number }>(result)[0]?.n ?? 0;
  }
}
