/**
 * The tus data store on S3. PostgreSQL holds the truth about every upload (length, metadata, the stored offset,
 * the parts and staged bytes); S3 holds the bytes. No `.info` objects, no cache: any instance answers any
 * request of any upload from the database, and an outage of S3 never hides an offset.
 *
 * @tus/s3-store's write path stores the end of every PATCH as a part of its own (so 10,000 PATCHes are the end
 * of an upload), derives offsets from S3 listings and keeps metadata in per-process caches: the three things
 * this store exists to do differently. So it implements @tus/utils' DataStore itself, over Freight's S3 layer,
 * and is held to the DataStore contract in test/tus/datastore.contract.ts.
 */
import type { Readable } from 'node:stream';
import type { Upload } from '@tus/utils';
import type { FileUpload } from '../../db/schema.js';
import { FreightError, conflict, gone, offsetMismatch } from '../../errors.js';
import { isAssembled } from '../../lifecycle.js';
import { planPartSize } from '../../uploads/planner.js';
import { sumOfSizes } from '../../uploads/parts.js';
import type { NewObject } from '../../storage/multipart.js';
import { BodyStalled } from '../body.js';
import { PartLayout, stagingKey, stagingPrefix } from './layout.js';
import { MainUploadLost, StagedBytesLost, completionFailure, joinedAsRecorded, stagedBytesLost } from './losses.js';
import { once } from './part-staging.js';
import { PatchWrite, type WriterDeps } from './writer.js';
import { copyPlan, joinInS3, type JoinDeps } from './join.js';
import { MemoryBudget, WHOLE_BUDGET, type WholeDeps, mayBeWhole, writeWhole } from './whole.js';
import { BufferPool } from '../../uploads/buffer-pool.js';
import { FreightStore, liveRecord, tusUpload, type WriteOptions } from '../upload-record.js';

export interface FreightS3StoreOptions extends WriterDeps {
  expiryMs: number;
  /** S3_TAGGING: tag completed objects with their SHA-256. */
  tagging: boolean;
  preferredPartSize: number;
  maxParts: number;
  /** Deferred-length uploads are planned as if they were this long. */
  maxUploadSize: number;
}

/** The object an upload becomes: its name, and what its pre-create hook shaped (object-headers.ts). */
const newObject = (record: FileUpload): NewObject => ({
  filename: record.filename ?? record.id,
  shape: record.objectShape,
});

export class FreightS3Store extends FreightStore {
  /** What the small-upload path (whole.ts) works with; its memory budget is this process's. */
  private readonly wholeDeps: WholeDeps;

  constructor(private readonly options: FreightS3StoreOptions) {
    super();
    this.wholeDeps = { ...options, budget: new MemoryBudget(WHOLE_BUDGET), bodies: new BufferPool(WHOLE_BUDGET) };
  }

  /** The part size of a new upload: its parts are this size whatever its PATCHes are. */
  partSizeFor(size: number | undefined): number {
    const { maxUploadSize, preferredPartSize, maxParts } = this.options;
    return planPartSize(size ?? maxUploadSize, preferredPartSize, maxParts);
  }

  /** The row was written by the creation hook; S3 is not asked until bytes arrive (a zero-byte upload is done). */
  override async create(upload: Upload): Promise<Upload> {
    if (upload.size === 0) await this.finish(upload.id);
    return upload;
  }

  override async write(stream: Readable, id: string, offset: number, options: WriteOptions = {}): Promise<number> {
    const record = options.record ?? (await this.record(id));
    if (record.storedOffset !== offset) {
      throw offsetMismatch(
        `the upload is at offset ${record.storedOffset}, not ${offset}; ask for its offset (HEAD) and resume`,
      );
    }
    if (record.totalSize !== null && offset === record.totalSize) {
      await this.finish(id);
      return offset;
    }
    if (mayBeWhole(record)) {
      const end = await writeWhole(this.wholeDeps, record, stream, options, {
        // Not a whole upload after all (the body ended early, stalled or was stopped): what arrived, as always.
        // It keeps the request's stop signal and connection: a slot is still never waited for once either ends.
        ordinary: (bytes) =>
          this.writeParts(
            bytes,
            record,
            { stop: options.stop, limit: options.limit, checksum: options.checksum },
            stream,
          ),
        discard: (upload) => this.discard(upload),
      });
      if (end !== undefined) return end;
    }
    return this.writeParts(stream, record, options);
  }

  /** The ordinary write path: the body cut into parts, staged where it ends (writer.ts), assembled when complete. */
  private async writeParts(
    stream: Readable,
    record: FileUpload,
    options: WriteOptions,
    request: Readable = stream,
  ): Promise<number> {
    const id = record.id;
    const write = new PatchWrite(
      this.options,
      record,
      once(() => this.mainUpload(record)),
    );
    let end: number;
    try {
      end = await write.run(stream, options, request);
    } catch (error) {
      if (error instanceof StagedBytesLost) await this.rewind(record, error);
      if (error instanceof MainUploadLost) throw await this.options.uploads.states.markLost(id, error.message);
      throw error;
    }
    if (record.totalSize !== null && end === record.totalSize) await this.finish(id);
    if (write.stalled) throw new BodyStalled(end);
    return end;
  }

  override async getUpload(id: string): Promise<Upload> {
    return tusUpload(await this.record(id));
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    await this.options.uploads.ledger.declareLength(id, length);
  }

  /**
   * Termination. Of an unfinished upload: the row first (no request may resume it after this), then S3, as far as
   * S3 lets us now (the janitor removes what S3 refused). An upload that expired, was lost or rejected keeps its
   * status and has its storage removed again. Of a completed upload: its object first (a failure is a 503 that
   * changed nothing; removing a missing object is a no-op), then the row.
   */
  override async remove(id: string): Promise<void> {
    const { uploads, objects } = this.options;
    const current = await uploads.access.getUploadForStorage(id);
    if (isAssembled(current.status)) await objects.deleteObjects([current.storageKey]);
    await this.discard(await uploads.states.delete(id, { completed: true }));
  }

  override async deleteExpired(): Promise<number> {
    return (await this.expireUploads()).length;
  }

  /** Open uploads past their expiry: marked expired, their S3 multipart uploads and staged objects removed. */
  async expireUploads(): Promise<FileUpload[]> {
    const expired = await this.options.uploads.states.expireOpenUploads('tus');
    for (const record of expired) await this.discard(record);
    return expired;
  }

  override getExpiration(): number {
    return this.options.expiryMs;
  }

  /** GET /files/:id: the object of a completed upload. */
  async read(id: string): Promise<Readable> {
    const record = await this.record(id);
    return this.options.objects.getObject(record.storageKey);
  }

  /**
   * Assembles an upload whose bytes are all stored: its last staged bytes become its last part, the parts S3
   * lists are checked against the recorded ones, and S3 joins them. Idempotent, and called again by the next
   * resume check when S3 failed half-way. The caller holds the upload's lock.
   */
  async finish(id: string): Promise<void> {
    const { uploads, multipart, objects, log } = this.options;
    let record = await uploads.access.getUploadForStorage(id);
    const totalSize = record.totalSize;
    if (isAssembled(record.status) || totalSize === null || record.storedOffset !== totalSize) return;
    if (record.staging) {
      await this.sealStaged(record);
      record = await uploads.access.getUploadForStorage(id);
    }
    let sha256: string | undefined;
    try {
      sha256 = await uploads.states.verifyDigest(record);
    } catch (error) {
      // Rejected: what S3 holds of it will never be an object.
      await this.discard(record);
      throw error;
    }
    if (totalSize === 0) {
      await objects.putObject(record.storageKey, Buffer.alloc(0), undefined, newObject(record));
      await this.recordCompletion(record, () => uploads.states.complete(record, 0, sha256, this.removal(record)));
      await this.tag(record, sha256);
      return;
    }
    const uploadId = record.s3UploadId;
    const parts = uploadId === null ? undefined : await multipart.listParts(record.storageKey, uploadId);
    if (parts === undefined) {
      // No multipart upload: either an earlier finish completed it (and its answer or record was lost), or it
      // vanished from storage.
      await uploads.states.recognizeObject(
        record,
        await multipart.objectSize(record.storageKey),
        this.removal(record),
        sha256,
      );
      return;
    }
    const verified = await uploads.ledger.verifyStoredParts(record, parts);
    await multipart.complete(record.storageKey, uploadId!, verified);
    await this.recordCompletion(record, () => uploads.states.complete(record, totalSize, sha256, this.removal(record)));
    await this.tag(record, sha256);
    objects.deletePrefix(stagingPrefix(record.storageKey)).catch((error: unknown) => {
      log.warn({ err: error, uploadId: id }, 'could not remove staged objects of a completed upload');
    });
  }

  /**
   * The staged bytes of the last part become that part without new bytes (the length was declared at the
   * offset already stored): the tail and the segments are joined and copied inside S3.
   */
  private async sealStaged(record: FileUpload): Promise<void> {
    const { objects, multipart, uploads } = this.options;
    const staging = record.staging!;
    const key = record.storageKey;
    const main = await this.mainUpload(record);
    let source = staging.tail?.key;
    try {
      if (staging.uploadId) {
        const staged = stagingKey(key, staging.partNumber);
        const segments = [...staging.segments];
        if (staging.tail) {
          const partNumber = segments.length + 1;
          const etag = await objects.copyPart(staged, staging.uploadId, partNumber, staging.tail.key);
          segments.push({ partNumber, size: staging.tail.size, etag });
        }
        const uploadId = staging.uploadId;
        const what = `staged part ${staging.partNumber}`;
        await multipart.complete(staged, uploadId, segments).catch(async (error: unknown) => {
          throw await completionFailure(error, () => multipart.listParts(staged, uploadId), what);
        });
        // S3 may answer a completion of an upload that an unrecorded join already completed (consumed) with
        // the object that join made: more bytes than recorded. Only the recorded bytes may become the part.
        joinedAsRecorded(await multipart.objectSize(staged), sumOfSizes(segments), what);
        source = staged;
      }
      if (source === undefined) throw new Error(`upload ${record.id} has staged bytes in neither segments nor a tail`);
      const etag = await objects.copyPart(key, main, staging.partNumber, source);
      const layout = new PartLayout(record.partSize!, record.totalSize);
      const offset = record.storedOffset!;
      const size = offset - layout.start(staging.partNumber);
      await uploads.ledger.advanceStoredOffset(record.id, {
        from: offset,
        to: offset,
        staging: null,
        part: { partNumber: staging.partNumber, size, etag },
        hashState: record.hashState,
      });
    } catch (error) {
      const lost = stagedBytesLost(error, `staged bytes of part ${staging.partNumber}`);
      if (lost instanceof StagedBytesLost) await this.rewind(record, lost);
      throw lost;
    }
  }

  /**
   * A final upload: joined by S3 itself where S3 allows (join.ts), else streamed through (the base class). Both
   * go on from whatever an earlier attempt did.
   */
  override async concatenate(final: FileUpload, partials: readonly FileUpload[], stop?: AbortSignal): Promise<void> {
    const plan = copyPlan(partials, this.options.maxParts);
    if (!plan) return super.concatenate(final, partials, stop);
    const deps: JoinDeps = {
      ...this.options,
      mainUpload: (record) => this.mainUpload(record),
      discard: (record) => this.discard(record),
      recordCompletion: (record, completion) => this.recordCompletion(record, completion),
      tag: (record, sha256) => this.tag(record, sha256),
    };
    await joinInS3(deps, final, partials, plan, stop);
  }

  /** A final upload given up: its multipart upload, staged bytes and any object made of it, removed. */
  override async abandon(record: FileUpload): Promise<void> {
    await this.discard(record);
    await this.options.objects.deleteObjects([record.storageKey]).catch((error: unknown) => {
      this.options.log.warn({ err: error, uploadId: record.id }, 'could not remove the object of an abandoned upload');
    });
  }

  /**
   * Records the completion of an upload whose object S3 now holds. Should the upload have ended meanwhile (its
   * writer lost its lock and the janitor expired it, or it was terminated), nothing completed may outlive it:
   * the object is removed and the answer is 410, as it is for every request after the end.
   */
  private async recordCompletion(record: FileUpload, completion: () => Promise<unknown>): Promise<void> {
    try {
      await completion();
    } catch (error) {
      // Refused by the pre-finish check: its object is removed already, and the client is told why.
      if (error instanceof FreightError && error.code === 'ERR_UPLOAD_REJECTED') throw error;
      const ended = await this.options.uploads.states.endedMeanwhile(record.id);
      if (!ended) throw error;
      await this.options.objects.deleteObjects([record.storageKey]);
      throw gone(`the upload was ${ended.status} while it was being completed; its object was removed`);
    }
  }

  /** Removes the object of an upload the pre-finish check refused. */
  removal(record: FileUpload): () => Promise<void> {
    return () => this.options.objects.deleteObjects([record.storageKey]);
  }

  /**
   * The digest as a tag of the object (S3 sets metadata only when an object is created, before the digest is
   * known). Best effort, and off with S3_TAGGING=false for servers without tagging (R2): the database has it.
   * S3 replaces an object's tags as a whole, so the pre-create hook's tags go with it (S3 kept them from the
   * object's creation; Ceph RGW 16 drops those of a multipart upload, so they are set here even without a digest).
   */
  private async tag(record: FileUpload, sha256: string | undefined): Promise<void> {
    const tags = { ...record.objectShape?.tags, ...(sha256 && { sha256 }) };
    if (Object.keys(tags).length === 0 || !this.options.tagging) return;
    const key = record.storageKey;
    await this.options.objects.tag(key, tags).catch((error: unknown) => {
      this.options.log.warn({ err: error, key }, 'could not tag the object with its SHA-256');
    });
  }

  /** The upload's own multipart upload: the recorded one, or a new one recorded now. */
  private async mainUpload(record: FileUpload): Promise<string> {
    if (record.s3UploadId) return record.s3UploadId;
    const { multipart, uploads } = this.options;
    const uploadId = await multipart.create(record.storageKey, newObject(record));
    if (await uploads.ledger.attachS3Upload(record.id, uploadId)) return uploadId;
    // Another writer recorded one first (it lost its lock to us in between): use that one.
    await multipart.abort(record.storageKey, uploadId).catch(() => {});
    const current = await uploads.access.getUploadForStorage(record.id);
    if (!current.s3UploadId) throw new Error(`upload ${record.id} has no multipart upload after one was recorded`);
    return current.s3UploadId;
  }

  /** Staged bytes are gone: the offset goes back to the start of their part, and the client is told to resume. */
  private async rewind(record: FileUpload, error: StagedBytesLost): Promise<never> {
    const partNumber = record.staging?.partNumber ?? 1;
    const to = new PartLayout(record.partSize!, record.totalSize).start(partNumber);
    await this.options.uploads.ledger.rewindStoredOffset(
      record.id,
      record.storedOffset ?? 0,
      partNumber,
      to,
      error.message,
    );
    // What is left of the staged bytes (a staging upload whose segments no longer match, a tail) is never used.
    const stagingUpload = record.staging?.uploadId;
    if (stagingUpload)
      await this.options.multipart.abort(stagingKey(record.storageKey, partNumber), stagingUpload).catch(() => {});
    await this.options.objects.deletePrefix(stagingPrefix(record.storageKey)).catch(() => {});
    throw conflict(`${error.message}; the upload continues from offset ${to}: ask for its offset (HEAD) and resume`);
  }

  /** What S3 holds of an upload that will never complete: removed now, as far as S3 lets us. */
  private async discard(record: FileUpload): Promise<void> {
    const { multipart, objects, log } = this.options;
    const key = record.storageKey;
    try {
      // A completed upload's multipart upload was consumed by its completion.
      if (record.s3UploadId && record.completedAt === null) await multipart.abort(key, record.s3UploadId);
      if (record.staging?.uploadId)
        await multipart.abort(stagingKey(key, record.staging.partNumber), record.staging.uploadId);
      await objects.deletePrefix(stagingPrefix(key));
      // The object a whole upload's PutObject left when its process died before recording it (whole.ts).
      if (record.completedAt === null && mayBeWhole({ ...record, storedOffset: 0, staging: null, s3UploadId: null }))
        await objects.deleteObjects([key]);
    } catch (error) {
      log.warn({ err: error, uploadId: record.id }, 'could not remove the storage of an abandoned upload');
    }
  }

  private record(id: string): Promise<FileUpload> {
    return liveRecord(this.options.uploads, id);
  }
}
