/**
 * The queries of final uploads (tus concatenation): their creation, which must find none of their partials held by
 * another final, the finals nobody assembles, and a multipart upload forgotten when storage lost it.
 */
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { fileUploads, type FileUpload, type NewFileUpload, type UploadStatus, type WebhookEvent } from './schema.js';
import { insertAdmittedIn } from './admission.js';
import { OPEN_LIST, rowLockKey } from './statements.js';

/** The class of the advisory locks taken on partial uploads while a final upload naming them is recorded. */
const PARTIALS_LOCK = 0x50415254; // "PART"

export class FinalsRepository {
  constructor(
    private readonly db: Db,
    private readonly webhookEvents: ReadonlySet<WebhookEvent>,
  ) {}

  /**
   * Inserts a final upload made of `row.concatPartials`, within the user's limits as insertUploadWithinLimit,
   * unless a final upload in one of `holding` already names one of them: then nothing is inserted and that final
   * and partial are returned. Exact under concurrency: the transaction first takes an advisory lock of its own on
   * each partial (in one order), so two finals naming one partial take turns.
   */
  async insertFinalUpload(
    row: NewFileUpload & { concatPartials: string[] },
    holding: readonly UploadStatus[],
    limits: { limit: number; now: Date; keptLimit: number },
  ): Promise<
    { created: FileUpload } | { open: number } | { kept: number } | { held: { final: string; partial: string } }
  > {
    const partials = row.concatPartials;
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`
        select pg_advisory_xact_lock(${PARTIALS_LOCK}::integer, hashtext(id::text))
        from unnest(${sql.param(partials)}::uuid[]) as partial(id) order by id`);
      const [holder] = await tx
        .select({ id: fileUploads.id, partials: fileUploads.concatPartials })
        .from(fileUploads)
        .where(
          and(
            eq(fileUploads.concat, 'final'),
            inArray(fileUploads.status, [...holding]),
            sql`${fileUploads.concatPartials} && ${sql.param(partials)}::uuid[]`,
          ),
        )
        .limit(1);
      if (holder) {
        const partial = partials.find((id) => holder.partials?.includes(id)) ?? partials[0]!;
        return { held: { final: holder.id, partial } };
      }
      return insertAdmittedIn(tx, this.webhookEvents, row, limits);
    });
  }

  /**
   * Open final uploads whose tus lock no session of any instance holds (nobody assembles them now), by id, at most
   * `limit`: the probe takes each lock for this statement's own transaction only (an instant).
   */
  async listIdleFinals(limit: number): Promise<FileUpload[]> {
    return this.db
      .select()
      .from(fileUploads)
      .where(
        and(
          eq(fileUploads.concat, 'final'),
          inArray(fileUploads.status, OPEN_LIST),
          sql`pg_try_advisory_xact_lock(${rowLockKey})`,
        ),
      )
      .orderBy(asc(fileUploads.id))
      .limit(limit);
  }

  /** Forgets the S3 UploadId `s3UploadId` of an upload (gone from storage), so that a new one can be set once. */
  async forgetS3Upload(id: string, s3UploadId: string): Promise<void> {
    await this.db
      .update(fileUploads)
      .set({ s3UploadId: null })
      .where(and(eq(fileUploads.id, id), eq(fileUploads.s3UploadId, s3UploadId)));
  }
}
