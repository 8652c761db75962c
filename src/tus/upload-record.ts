/** How both tus stores read an upload: its row in PostgreSQL is the truth, for the DataStore contract as for clients. */
import { Readable } from 'node:stream';
import { DataStore, ERRORS, Upload } from '@tus/utils';
import type { ExpectedChecksum } from './checksum.js';
import type { FileUpload } from '../db/schema.js';
import type { UploadService } from '../uploads/service.js';
import { hasEnded } from '../lifecycle.js';

/**
 * A final upload's assembly stopped before its end because its lock was wanted (a termination, another instance)
 * or lost: not a failure of the assembly, which goes on later from where it stopped.
 */
export class AssemblyInterrupted extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssemblyInterrupted';
  }
}

/** What Freight's body writer (write.ts) tells a store beyond the DataStore's write(stream, id, offset). */
export interface WriteOptions {
  /** The upload's row as read under its lock: the store need not read it again. */
  record?: FileUpload | undefined;
  /** Aborted when another request wants the upload: the store keeps what arrived and returns. */
  stop?: AbortSignal | undefined;
  /** The most bytes the body may bring; more is 413. */
  limit?: number | undefined;
  /** Upload-Checksum: nothing is recorded unless the whole body has this digest (else 460). */
  checksum?: ExpectedChecksum | undefined;
}

/** The tus extensions both stores offer (OPTIONS: Tus-Extension). */
export const TUS_EXTENSIONS = [
  'creation',
  'creation-with-upload',
  'creation-defer-length',
  'termination',
  'expiration',
  'checksum',
  'concatenation',
] as const;

/** What Freight asks of a tus store beyond @tus/utils' DataStore. */
export abstract class FreightStore extends DataStore {
  constructor() {
    super();
    this.extensions = [...TUS_EXTENSIONS];
  }

  /**
   * Writes the body from `offset` and returns the offset now stored. Throws BodyStalled (with the offset stored)
   * when the body stalled, and a 460 when an Upload-Checksum did not match (nothing recorded).
   */
  abstract override write(stream: Readable, id: string, offset: number, options?: WriteOptions): Promise<number>;
  /** The part size of a new upload of `size` bytes (undefined: deferred), or null where there are no parts. */
  abstract partSizeFor(size: number | undefined): number | null;
  /** The bytes of a completed upload (GET /files/:id). */
  abstract read(id: string): Promise<Readable>;
  /** Completes an upload whose bytes are all stored, if a failure left that undone. The caller holds its lock. */
  abstract finish(id: string): Promise<void>;

  /**
   * Makes `final` the concatenation of its `partials` (completed uploads): here by writing their bytes into it
   * in order, through the ordinary write path (bounded memory and disk, its digest computed on the way); a store
   * that can join them without moving the bytes overrides this. The caller holds the final upload's lock.
   *
   * Idempotent: an earlier attempt cut short (a crash, an outage) left the final at its stored offset, and this one
   * goes on from there (the bytes before it are read past, not written again); a final whose bytes are all stored
   * is only completed. `stop`: the write stores what it has and returns (the caller's lock is wanted or lost).
   */
  async concatenate(final: FileUpload, partials: readonly FileUpload[], stop?: AbortSignal): Promise<void> {
    const from = final.storedOffset ?? 0;
    if (final.totalSize !== null && from >= final.totalSize) {
      await this.finish(final.id);
      return;
    }
    const end = await this.write(Readable.from(this.bytesOf(partials, from)), final.id, from, { record: final, stop });
    if (final.totalSize !== null && end < final.totalSize) {
      throw new AssemblyInterrupted(`the assembly stopped at offset ${end} of ${final.totalSize}`);
    }
  }

  /** The partials' bytes in order, from byte `from` of their concatenation on. */
  private async *bytesOf(partials: readonly FileUpload[], from: number): AsyncGenerator<Buffer> {
    let start = 0;
    for (const partial of partials) {
      const size = partial.totalSize ?? 0;
      const skip = from - start;
      start += size;
      if (skip >= size) continue;
      let skipped = Math.max(skip, 0);
      for await (const chunk of await this.read(partial.id)) {
        const buffer = chunk as Buffer;
        if (skipped >= buffer.length) {
          skipped -= buffer.length;
          continue;
        }
        yield skipped > 0 ? buffer.subarray(skipped) : buffer;
        skipped = 0;
      }
    }
  }

  /**
   * What storage holds of an upload that ended without completing (a final upload given up), removed as far as
   * storage lets now; the janitor removes what is left.
   */
  abstract abandon(record: FileUpload): Promise<void>;

  /**
   * Removes the object of an upload the pre-finish check refused (WEBHOOK_PRE_FINISH); idempotent. On S3 it
   * removes the object of a direct upload as well: both paths share the bucket.
   */
  abstract removal(record: FileUpload): () => Promise<void>;

  /** deleteExpired, telling which uploads it expired (the janitor reports them). */
  abstract expireUploads(): Promise<FileUpload[]>;
}

/** The row of an upload that can still be written to or read: 404 when there is none, 410 when it is gone. */
export async function liveRecord(uploads: UploadService, id: string): Promise<FileUpload> {
  const record = await uploads.access.findForStorage(id);
  if (!record) throw ERRORS.FILE_NOT_FOUND;
  if (hasEnded(record.status)) throw ERRORS.FILE_NO_LONGER_EXISTS;
  return record;
}

/** The upload as the DataStore contract sees it: offset, length and metadata from the row. */
export function tusUpload(record: FileUpload): Upload {
  return new Upload({
    id: record.id,
    size: record.totalSize ?? undefined,
    offset: record.storedOffset ?? 0,
    metadata: record.metadata ?? undefined,
    creation_date: record.createdAt.toISOString(),
  });
}
