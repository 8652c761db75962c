/**
 * Wraps any tus DataStore (S3 or local files) so that what happens to an upload's bytes is written to the
 * upload-state service: the durable offset around every write, a length declared late, termination.
 *
 * It also answers getUpload (every HEAD, PATCH and creation asks it) from Postgres when the database knows the
 * durable offset, that is when no write is in flight or was interrupted; otherwise storage is asked (for S3 a
 * ListParts and a HeadObject). A resume check then costs two database queries instead of two S3 requests.
 */
import type { Readable } from 'node:stream';
import { DataStore, ERRORS, Upload } from '@tus/utils';
import { knownOffset, type UploadService } from '../uploads/service.js';

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
    await this.uploads.beginWrite(id);
    const end = await this.inner.write(stream, id, offset);
    await this.uploads.endWrite(id, end);
    return end;
  }

  override async getUpload(id: string): Promise<Upload> {
    const record = await this.uploads.findForStorage(id);
    const known = record && knownOffset(record);
    if (record && known !== undefined) {
      return new Upload({
        id,
        size: record.totalSize ?? undefined,
        offset: known,
        metadata: record.metadata ?? undefined,
        creation_date: record.createdAt.toISOString(),
      });
    }
    const upload = await this.inner.getUpload(id);
    if (record && upload.size !== undefined && upload.offset === upload.size && record.status !== 'completed') {
      await this.uploads.markCompleted(id, upload.size);
    }
    return upload;
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
