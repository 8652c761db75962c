/**
 * Wraps any tus DataStore (S3 or local files) so that what happens to an upload's bytes is written to the
 * upload-state service: progress after every write, a length declared late, termination.
 */
import type { Readable } from 'node:stream';
import { DataStore, ERRORS, type Upload } from '@tus/utils';
import type { UploadService } from '../uploads/service.js';

interface ReadableStore extends DataStore {
  read(id: string): Readable | Promise<Readable>;
}

const canRead = (store: DataStore): store is ReadableStore =>
  typeof (store as Partial<ReadableStore>).read === 'function';

export class RecordingStore extends DataStore {
  constructor(
    readonly inner: DataStore,
    private readonly uploads: UploadService,
  ) {
    super();
    this.extensions = inner.extensions;
  }

  override create(upload: Upload): Promise<Upload> {
    return this.inner.create(upload);
  }

  override async write(stream: Readable, id: string, offset: number): Promise<number> {
    const end = await this.inner.write(stream, id, offset);
    await this.uploads.recordProgress(id, end);
    return end;
  }

  override getUpload(id: string): Promise<Upload> {
    return this.inner.getUpload(id);
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    await this.inner.declareUploadLength(id, length);
    await this.uploads.declareLength(id, length);
  }

  /** The row is marked first: once a client asked to terminate, no later request may resume the upload. */
  override async remove(id: string): Promise<void> {
    await this.uploads.markAborted(id);
    await this.inner.remove(id);
  }

  override deleteExpired(): Promise<number> {
    return this.inner.deleteExpired();
  }

  override getExpiration(): number {
    return this.inner.getExpiration();
  }

  /** GET /files/:id (download of a finished upload). */
  async read(id: string): Promise<Readable> {
    if (!canRead(this.inner)) throw ERRORS.FILE_NOT_FOUND;
    return this.inner.read(id);
  }
}
