/**
 * Every query Freight makes, under domain names. Status changes are single guarded UPDATEs
 * (`where status in (...)`), so two racing requests cannot both make the same transition.
 */
import { and, asc, count, desc, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import {
  fileUploads,
  uploadParts,
  type FileUpload,
  type NewFileUpload,
  type UploadPart,
  type UploadStatus,
} from './schema.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids come from URLs; anything that is not a UUID cannot name an upload (and must not reach a uuid column). */
export const isUploadId = (id: string): boolean => UUID.test(id);

export interface PartRecord {
  partNumber: number;
  size: number;
  etag: string | null;
  status: UploadPart['status'];
}

export interface ListCursor {
  createdAt: Date;
  id: string;
}

export class UploadRepository {
  /** The queries on every request's path, built once (drizzle otherwise rebuilds the SQL each time). */
  private readonly byId;
  private readonly byOwnerAndId;

  constructor(private readonly db: Db) {
    this.byId = db
      .select()
      .from(fileUploads)
      .where(eq(fileUploads.id, sql.placeholder('id')))
      .prepare('freight_upload_by_id');
    this.byOwnerAndId = db
      .select()
      .from(fileUploads)
      .where(and(eq(fileUploads.id, sql.placeholder('id')), eq(fileUploads.userId, sql.placeholder('userId'))))
      .prepare('freight_upload_by_owner_and_id');
  }

  async insertUpload(row: NewFileUpload): Promise<FileUpload> {
    const [created] = await this.db.insert(fileUploads).values(row).returning();
    if (!created) throw new Error(`insert of upload ${row.id} returned no row`);
    return created;
  }

  async findUpload(id: string): Promise<FileUpload | undefined> {
    if (!isUploadId(id)) return undefined;
    const [row] = await this.byId.execute({ id });
    return row;
  }

  async findOwnedUpload(userId: string, id: string): Promise<FileUpload | undefined> {
    if (!isUploadId(id)) return undefined;
    const [row] = await this.byOwnerAndId.execute({ id, userId });
    return row;
  }

  async findOwnedUploadByS3UploadId(userId: string, s3UploadId: string): Promise<FileUpload | undefined> {
    const [row] = await this.db
      .select()
      .from(fileUploads)
      .where(and(eq(fileUploads.s3UploadId, s3UploadId), eq(fileUploads.userId, userId)));
    return row;
  }

  /** The user's uploads, newest first, one page after `cursor`. */
  async listOwnedUploads(
    userId: string,
    options: { status?: UploadStatus | undefined; limit: number; after?: ListCursor | undefined },
  ): Promise<FileUpload[]> {
    const { status, limit, after } = options;
    return this.db
      .select()
      .from(fileUploads)
      .where(
        and(
          eq(fileUploads.userId, userId),
          status ? eq(fileUploads.status, status) : undefined,
          after
            ? or(
                lt(fileUploads.createdAt, after.createdAt),
                and(eq(fileUploads.createdAt, after.createdAt), lt(fileUploads.id, after.id)),
              )
            : undefined,
        ),
      )
      .orderBy(desc(fileUploads.createdAt), desc(fileUploads.id))
      .limit(limit);
  }

  /** Moves the upload to a new status only from one of `from`; undefined when it was in none of them. */
  async transition(
    id: string,
    from: readonly UploadStatus[],
    set: Partial<NewFileUpload> & { status: UploadStatus },
  ): Promise<FileUpload | undefined> {
    const [row] = await this.db
      .update(fileUploads)
      .set(set)
      .where(and(eq(fileUploads.id, id), inArray(fileUploads.status, [...from])))
      .returning();
    return row;
  }

  /** Facts learned from storage (the S3 UploadId, a length declared late, the stored offset); no status change. */
  async updateUpload(id: string, set: Pick<Partial<NewFileUpload>, 's3UploadId' | 'totalSize' | 'storedOffset'>): Promise<void> {
    await this.db.update(fileUploads).set(set).where(eq(fileUploads.id, id));
  }

  /**
   * Bytes the server holds for an upload that is still open; the first bytes move it to `uploading`
   * (and an upload whose last attempt failed goes back to `uploading` when it makes progress again).
   */
  async recordProgress(id: string, bytes: number): Promise<void> {
    await this.db
      .update(fileUploads)
      .set({
        bytesReceived: sql`greatest(${fileUploads.bytesReceived}, ${bytes})`,
        status: 'uploading',
        error: null,
      })
      .where(and(eq(fileUploads.id, id), inArray(fileUploads.status, ['pending', 'uploading', 'failed'])));
  }

  /**
   * Takes the upload's completion lock until `until`, if the upload is in one of `from` and nobody holds a
   * live lock. Only one of several concurrent completes gets the row back.
   */
  async lockForCompletion(id: string, from: readonly UploadStatus[], until: Date): Promise<FileUpload | undefined> {
    const [row] = await this.db
      .update(fileUploads)
      .set({ lockedUntil: until })
      .where(
        and(
          eq(fileUploads.id, id),
          inArray(fileUploads.status, [...from]),
          or(isNull(fileUploads.lockedUntil), lt(fileUploads.lockedUntil, sql`now()`)),
        ),
      )
      .returning();
    return row;
  }

  async unlockCompletion(id: string): Promise<void> {
    await this.db.update(fileUploads).set({ lockedUntil: null }).where(eq(fileUploads.id, id));
  }

  /**
   * Inserts or updates part rows (planned, or stored with their ETag): one statement with four array
   * parameters, whatever the number of parts (10,000 rows as VALUES would be 50,000 parameters to build).
   */
  async upsertParts(uploadId: string, parts: readonly PartRecord[]): Promise<void> {
    if (parts.length === 0) return;
    await this.db.execute(sql`
      insert into ${uploadParts} (upload_id, part_number, size, etag, status)
      select ${uploadId}::uuid, part_number, size, etag, status::part_status
      from unnest(
        ${sql.param(parts.map((part) => part.partNumber))}::integer[],
        ${sql.param(parts.map((part) => part.size))}::bigint[],
        ${sql.param(parts.map((part) => part.etag))}::text[],
        ${sql.param(parts.map((part) => part.status))}::text[]
      ) as part(part_number, size, etag, status)
      on conflict (upload_id, part_number) do update
        set size = excluded.size, etag = excluded.etag, status = excluded.status, updated_at = now()`);
  }

  async listParts(uploadId: string): Promise<UploadPart[]> {
    return this.db
      .select()
      .from(uploadParts)
      .where(eq(uploadParts.uploadId, uploadId))
      .orderBy(asc(uploadParts.partNumber));
  }

  async countStoredParts(uploadId: string): Promise<number> {
    const [row] = await this.db
      .select({ stored: count() })
      .from(uploadParts)
      .where(and(eq(uploadParts.uploadId, uploadId), eq(uploadParts.status, 'stored')));
    return row?.stored ?? 0;
  }
}
