/**
 * The tus store of the embedded defaults: @tus/file-store under DATA_DIR/files, with the upload's state in the
 * database exactly as on S3. The stored offset moves once per PATCH, when the file store has written it and the
 * file is fsynced: after a power cut the file is never shorter than the offset HEAD answers (invariant 1).
 * (A process killed in the middle of a PATCH leaves the file longer than the recorded offset; the client resends
 * from the offset and @tus/file-store overwrites from there.)
 */
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { FileStore } from '@tus/file-store';
import { ERRORS, type Upload } from '@tus/utils';
import type { FastifyBaseLogger } from 'fastify';
import { checksumMismatch, offsetMismatch } from '../errors.js';
import { RunningDigest, hashes } from '../uploads/digest.js';
import { isAssembled } from '../lifecycle.js';
import type { FileUpload } from '../db/schema.js';
import type { UploadService } from '../uploads/service.js';
import { BodyReader, BodyStalled, type StallRule } from './body.js';
import { FreightStore, liveRecord, tusUpload, type WriteOptions } from './upload-record.js';

/** Removing a file that is not there (an upload deleted again) leaves nothing to do. */
const ignoreMissing = (error: unknown): void => {
  if (error !== ERRORS.FILE_NOT_FOUND) throw error;
};

/** The chunks, each fed to the digest on its way. */
async function* hashed(chunks: AsyncIterable<Buffer>, digest: RunningDigest | undefined): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    const behind = digest?.update(chunk);
    if (behind) await behind;
    yield chunk;
  }
}

/** Makes what was written to a file (or, for a directory, its entries) durable: fsync(2). */
export type FileSync = (file: string) => Promise<void>;

/**
 * fsync through a descriptor of our own: @tus/file-store writes through a stream it closes, and fsync flushes
 * the file's (the inode's) dirty pages whichever descriptor wrote them.
 */
export const fsync: FileSync = async (file) => {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
};

export class RecordedFileStore extends FreightStore {
  constructor(
    private readonly inner: FileStore,
    private readonly uploads: UploadService,
    private readonly log: FastifyBaseLogger,
    private readonly stall: StallRule,
    /** UPLOAD_SHA256: keep the running digest of every upload. */
    private readonly hashing: boolean,
    /** fsync; a test passes one that watches when it happens. */
    private readonly sync: FileSync = fsync,
  ) {
    super();
  }

  partSizeFor(): null {
    return null;
  }

  /** The new file and its directory entry are durable before the creation is answered (a PATCH opens it `r+`). */
  override async create(upload: Upload): Promise<Upload> {
    const created = await this.inner.create(upload);
    await this.sync(this.fileOf(created.id));
    await this.sync(this.inner.directory);
    if (created.size === 0) await this.finish(created.id);
    return created;
  }

  private fileOf(id: string): string {
    return path.join(this.inner.directory, id);
  }

  override async write(stream: Readable, id: string, offset: number, options: WriteOptions = {}): Promise<number> {
    const record = options.record ?? (await liveRecord(this.uploads, id));
    if (record.storedOffset !== offset) {
      throw offsetMismatch(
        `the upload is at offset ${record.storedOffset}, not ${offset}; ask for its offset (HEAD) and resume`,
      );
    }
    // The same rules as on S3: a body that stalls or is stopped ends here and what arrived is kept; the running
    // SHA-256 goes on from the state recorded with the offset; a checksummed body is recorded only if it matches
    // (otherwise its bytes stay in the file past the recorded offset, and the next PATCH overwrites them).
    const body = new BodyReader(stream, { ...options, stall: this.stall });
    const digest = hashes(this.hashing, record.metadata)
      ? await RunningDigest.resume(record.hashState, offset)
      : undefined;
    let end: number;
    let hashState: string | null = null;
    try {
      end = await this.inner.write(Readable.from(hashed(body.chunks(), digest)), id, offset);
      if (digest) hashState = await digest.save();
    } finally {
      digest?.close();
    }
    if (!body.checksumMatches())
      throw checksumMismatch(
        'the body does not have its Upload-Checksum (or did not arrive whole); nothing was recorded',
      );
    if (end !== offset) {
      // The offset says what the file durably holds: its bytes reach the disk before the offset moves past them.
      await this.sync(this.fileOf(id));
      await this.uploads.ledger.advanceStoredOffset(id, { from: offset, to: end, staging: null, hashState });
    }
    await this.finish(id);
    if (body.stalled) throw new BodyStalled(end);
    return end;
  }

  override async getUpload(id: string): Promise<Upload> {
    return tusUpload(await liveRecord(this.uploads, id));
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    await this.uploads.ledger.declareLength(id, length);
    await this.inner.declareUploadLength(id, length);
  }

  /**
   * Termination. Of an unfinished upload, the row first: once a client asked to terminate, no later request may
   * resume the upload. An upload that expired, was lost or rejected keeps its status and loses its file (if it
   * still has one). Of a completed upload, its file first (a failure changes nothing), then the row.
   */
  override async remove(id: string): Promise<void> {
    const current = await this.uploads.access.getUploadForStorage(id);
    if (isAssembled(current.status)) await this.inner.remove(id).catch(ignoreMissing);
    await this.uploads.states.delete(id, { completed: true });
    await this.discard(id);
  }

  override async deleteExpired(): Promise<number> {
    return (await this.expireUploads()).length;
  }

  async expireUploads(): Promise<FileUpload[]> {
    const expired = await this.uploads.states.expireOpenUploads('tus');
    for (const record of expired) await this.discard(record.id);
    return expired;
  }

  override getExpiration(): number {
    return this.inner.getExpiration();
  }

  async read(id: string): Promise<Readable> {
    await liveRecord(this.uploads, id);
    return this.inner.read(id);
  }

  /** Nothing to assemble: every byte is in the file once the offset reaches the length (and has the digest announced). */
  async finish(id: string): Promise<void> {
    const record = await this.uploads.access.getUploadForStorage(id);
    if (!isAssembled(record.status) && record.totalSize !== null && record.storedOffset === record.totalSize) {
      const sha256 = await this.uploads.states.verifyDigest(record).catch(async (error: unknown) => {
        await this.discard(id);
        throw error;
      });
      await this.uploads.states.complete(record, record.totalSize, sha256, this.removal(record));
    }
  }

  /**
   * A final upload is recorded without a file (its creation asks storage for nothing): the file is made here, by
   * the first attempt, and kept by later ones (creating it again would truncate the bytes already stored).
   */
  override async concatenate(final: FileUpload, partials: readonly FileUpload[], stop?: AbortSignal): Promise<void> {
    const exists = await stat(this.fileOf(final.id)).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return false;
        throw error;
      },
    );
    if (!exists) {
      if ((final.storedOffset ?? 0) > 0) {
        throw new Error(`the file of final upload ${final.id} is gone, with the ${final.storedOffset} bytes recorded`);
      }
      await this.inner.create(tusUpload(final));
      await this.sync(this.fileOf(final.id));
      await this.sync(this.inner.directory);
    }
    await super.concatenate(final, partials, stop);
  }

  override async abandon(record: FileUpload): Promise<void> {
    await this.discard(record.id);
  }

  /** Removes the file of an upload the pre-finish check refused. */
  removal(record: FileUpload): () => Promise<void> {
    return () => this.inner.remove(record.id).catch(ignoreMissing);
  }

  private async discard(id: string): Promise<void> {
    await this.inner
      .remove(id)
      .catch(ignoreMissing)
      .catch((error: unknown) => {
        this.log.warn({ err: error, uploadId: id }, 'could not remove the file of an abandoned upload');
      });
  }
}
