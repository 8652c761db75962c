/** How both tus stores read an upload: its row in PostgreSQL is the truth, for @tus/server as for clients. */
import type { Readable } from 'node:stream';
import { DataStore, ERRORS, Upload } from '@tus/utils';
import type { FileUpload } from '../db/schema.js';
import type { UploadService } from '../uploads/service.js';

/** What Freight asks of a tus store beyond @tus/server's DataStore. */
export abstract class FreightStore extends DataStore {
  /** The part size of a new upload of `size` bytes (undefined: deferred), or null where there are no parts. */
  abstract partSizeFor(size: number | undefined): number | null;
  /** The bytes of a completed upload (GET /files/:id). */
  abstract read(id: string): Promise<Readable>;
  /** Completes an upload whose bytes are all stored, if a failure left that undone. The caller holds its lock. */
  abstract finish(id: string): Promise<void>;
  /** deleteExpired, telling which uploads it expired (the janitor reports them). */
  abstract expireUploads(): Promise<FileUpload[]>;
}

const GONE = new Set<FileUpload['status']>(['aborted', 'expired', 'lost', 'rejected']);

/** The row of an upload that can still be written to or read: 404 when there is none, 410 when it is gone. */
export async function liveRecord(uploads: UploadService, id: string): Promise<FileUpload> {
  const record = await uploads.findForStorage(id);
  if (!record) throw ERRORS.FILE_NOT_FOUND;
  if (GONE.has(record.status)) throw ERRORS.FILE_NO_LONGER_EXISTS;
  return record;
}

/** The upload as @tus/server sees it: offset, length and metadata from the row. */
export function tusUpload(record: FileUpload): Upload {
  return new Upload({
    id: record.id,
    size: record.totalSize ?? undefined,
    offset: record.storedOffset ?? 0,
    metadata: record.metadata ?? undefined,
    creation_date: record.createdAt.toISOString(),
  });
}
