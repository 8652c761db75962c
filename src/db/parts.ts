/** The part rows of uploads: planned, stored with their ETags, the MD5s a direct client signed them with. */
import { and, asc, count, eq, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { uploadParts, type UploadPart } from './schema.js';

/** A part row as the ledger writes it. */
export interface PartRecord {
  partNumber: number;
  size: number;
  etag: string | null;
  status: UploadPart['status'];
}

export class PartRepository {
  constructor(private readonly db: Db) {}

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

  /** The base64 MD5s a direct upload's client signed its parts with (rows made for parts not planned yet). */
  async recordPartMd5s(uploadId: string, parts: ReadonlyArray<{ partNumber: number; md5: string }>): Promise<void> {
    if (parts.length === 0) return;
    await this.db.execute(sql`
      insert into ${uploadParts} (upload_id, part_number, size, status, md5)
      select ${uploadId}::uuid, part_number, 0, 'pending'::part_status, md5
      from unnest(${sql.param(parts.map((part) => part.partNumber))}::integer[], ${sql.param(parts.map((part) => part.md5))}::text[])
        as part(part_number, md5)
      on conflict (upload_id, part_number) do update set md5 = excluded.md5, updated_at = now()`);
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
