/** Pages of uploads: an owner's (GET /api/uploads), and any user's for the operator (`freight uploads`). */
import { and, desc, eq, lt, or } from 'drizzle-orm';
import type { Db } from './client.js';
import { fileUploads, type FileUpload, type UploadStatus } from './schema.js';
import type { ListCursor } from './repository.js';

export class ListingRepository {
  constructor(private readonly db: Db) {}

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

  /** Any user's uploads, newest first (the operator's `freight uploads`), by owner and status when given. */
  async listUploads(filter: {
    userId?: string | undefined;
    status?: UploadStatus | undefined;
    limit: number;
  }): Promise<FileUpload[]> {
    return this.db
      .select()
      .from(fileUploads)
      .where(
        and(
          filter.userId === undefined ? undefined : eq(fileUploads.userId, filter.userId),
          filter.status === undefined ? undefined : eq(fileUploads.status, filter.status),
        ),
      )
      .orderBy(desc(fileUploads.createdAt), desc(fileUploads.id))
      .limit(filter.limit);
  }
}
