/**
 * One PATCH written to S3: the body is cut into pieces at the upload's part boundaries; a piece that fills its
 * part becomes that part (directly, or through its staging upload when earlier PATCHes staged its start), and
 * the piece the body ends in is staged. Pieces go to S3 in parallel (as many as there are part slots), but the
 * stored offset moves strictly in order, each step by one guarded UPDATE after S3 holds its bytes: the offset
 * Freight reports is always a prefix of what S3 holds, never past a missing part.
 *
 * When a step fails, reading stops, nothing after the failed step is recorded, and the error goes to the
 * client (503 for storage); the offset stays where the last recorded step left it.
 *
 * The upload's running SHA-256 is fed the body as it is read, and its state at each step's end is recorded with
 * that step. A PATCH with Upload-Checksum records nothing before its whole body has arrived and matched: its steps
 * go to S3 as they fill, but are recorded only then (or never: its bytes are discarded, the offset does not move).
 */
import type { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { FileUpload, StagingState } from '../../db/schema.js';
import type { StoredAdvance } from '../../db/repository.js';
import type { S3MultipartStorage } from '../../storage/multipart.js';
import type { S3Objects } from '../../storage/objects.js';
import type { UploadService } from '../../uploads/service.js';
import { checksumMismatch } from '../../errors.js';
import { RunningDigest, hashes } from '../../uploads/digest.js';
import { BodyReader, type StallRule } from '../body.js';
import type { WriteOptions } from '../upload-record.js';
import { MIN_SEGMENT, PartLayout, stagingKey, tailKey } from './layout.js';
import { Piece } from './piece.js';
import type { PartSlots } from './slots.js';
import { mainUploadLost, segmentsHeld, stagedBytesLost } from './losses.js';

export interface WriterDeps {
  uploads: UploadService;
  multipart: S3MultipartStorage;
  objects: S3Objects;
  slots: PartSlots;
  /** This process's own temp directory (part files). */
  tempDir: string;
  stall: StallRule;
  /** UPLOAD_SHA256: keep the running digest of every upload. */
  hashing: boolean;
  log: FastifyBaseLogger;
}

/** What a step stored, to record once every step before it is recorded. */
interface Stored {
  advance: Omit<StoredAdvance, 'from' | 'hashState'>;
  /** Staged objects the advance makes obsolete, removed once it is recorded. */
  obsolete: string[];
}

export class PatchWrite {
  /** The offset recorded as stored. */
  private committed: number;
  private chain: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;
  private readonly abort = new AbortController();
  private readonly layout: PartLayout;
  /** True when the body was cut off for stalling (the request's connection is then closed). */
  stalled = false;
  /** Resolves true once the body's Upload-Checksum (if any) matched; false when its steps must not be recorded. */
  private verified: Promise<boolean> = Promise.resolve(true);

  constructor(
    private readonly deps: WriterDeps,
    private readonly upload: FileUpload,
    /** The upload's own multipart upload, created on first need (shared by this write's steps). */
    private readonly mainUpload: () => Promise<string>,
  ) {
    if (upload.partSize === null || upload.storedOffset === null)
      throw new Error(`upload ${upload.id} has no part plan`);
    this.committed = upload.storedOffset;
    this.layout = new PartLayout(upload.partSize, upload.totalSize);
  }

  /** Reads the body to its end (or until it stalls, is stopped, or a step fails) and returns the offset now stored. */
  async run(source: Readable, options: WriteOptions = {}): Promise<number> {
    const digest = hashes(this.deps.hashing, this.upload.metadata)
      ? await RunningDigest.resume(this.upload.hashState, this.committed)
      : undefined;
    try {
      return await this.write(new BodyReader(source, { ...options, stall: this.deps.stall }), digest, options);
    } finally {
      // The states already asked for still arrive: the hasher is freed once they have.
      digest?.close();
    }
  }

  private async write(reader: BodyReader, digest: RunningDigest | undefined, options: WriteOptions): Promise<number> {
    let settleChecksum: (matched: boolean) => void = () => {};
    if (options.checksum) this.verified = new Promise((resolve) => (settleChecksum = resolve));
    let piece = this.firstPiece();
    let from = this.committed;
    try {
      reading: for await (const chunk of reader.chunks()) {
        let rest = chunk;
        while (rest.length > 0) {
          if (this.failure) break reading;
          const partEnd = this.layout.end(piece.partNumber);
          const take = rest.subarray(0, partEnd - piece.end);
          if (take.length === 0) throw new Error(`a body past the end of upload ${this.upload.id}`);
          await piece.append(take);
          const behind = digest?.update(take);
          if (behind) await behind;
          rest = rest.subarray(take.length);
          if (piece.end === partEnd) {
            const prefix = this.stagedBefore(from);
            from = this.schedule(piece, from, digest?.save(), (sealed) => this.storePart(sealed, prefix));
            piece = this.newPiece(piece.partNumber + 1, piece.end);
          }
        }
      }
    } catch (error) {
      this.fail(error);
    }
    this.stalled = reader.stalled;
    // "Once the entire request has been received, the Server MUST verify the uploaded chunk against the provided
    // checksum"; on a mismatch "the uploaded chunk MUST be discarded, and the upload and its offset MUST NOT be
    // updated". A body that did not arrive whole cannot match.
    const matched = reader.checksumMatches();
    settleChecksum(matched && !this.failure);
    if (!matched)
      this.fail(
        checksumMismatch(
          reader.complete
            ? 'the body does not have its Upload-Checksum; nothing was recorded'
            : 'the body did not arrive whole, so its Upload-Checksum cannot match; nothing was recorded',
        ),
      );
    if (!this.failure && piece.fresh > 0) {
      const prefix = this.stagedBefore(from);
      this.schedule(piece, from, digest?.save(), (sealed) => this.stage(sealed, prefix));
    } else {
      await piece.release();
    }
    await this.chain;
    if (this.failure) throw this.failure.error;
    return this.committed;
  }

  /** The first piece continues the part the stored offset is in, after its staged tail (read back first). */
  private firstPiece(): Piece {
    const staging = this.upload.staging;
    const tail = staging?.tail;
    const start = this.committed - (tail?.size ?? 0);
    const prefix = tail
      ? {
          size: tail.size,
          read: () =>
            this.deps.objects.getObject(tail.key, this.abort.signal).catch((error: unknown) => {
              throw stagedBytesLost(error, `staged tail ${tail.key}`);
            }),
        }
      : undefined;
    return new Piece(this.layout.partAt(this.committed), start, {
      dir: this.deps.tempDir,
      slots: this.deps.slots,
      signal: this.abort.signal,
      prefix,
    });
  }

  /**
   * The staged start of the part a piece from `from` belongs to: only the write's first piece has one, the
   * staging recorded when the write began. Not judged by `this.committed`, which moves as earlier steps are
   * recorded: a later piece would take the staging of a part already stored for its own.
   */
  private stagedBefore(from: number): StagingState | null {
    return from === this.upload.storedOffset ? this.upload.staging : null;
  }

  private newPiece(partNumber: number, start: number): Piece {
    return new Piece(partNumber, start, { dir: this.deps.tempDir, slots: this.deps.slots, signal: this.abort.signal });
  }

  /**
   * Starts `store` for the piece now and records its result after every earlier step is recorded.
   * Returns the offset the step will have stored, where the next one starts.
   */
  private schedule(
    piece: Piece,
    from: number,
    hashState: Promise<string> | undefined,
    store: (piece: Piece) => Promise<Stored>,
  ): number {
    const stored = store(piece).finally(() => piece.release());
    stored.catch(() => {});
    hashState?.catch(() => {});
    this.chain = this.chain.then(async () => {
      try {
        const { advance, obsolete } = await stored;
        if (this.failure || !(await this.verified)) return;
        await this.deps.uploads.ledger.advanceStoredOffset(this.upload.id, {
          from,
          ...advance,
          hashState: (await hashState) ?? null,
        });
        this.committed = advance.to;
        if (obsolete.length > 0) this.removeLater(obsolete);
      } catch (error) {
        this.fail(error);
      }
    });
    return piece.end;
  }

  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = { error };
    this.abort.abort(error);
  }

  /** A full part: sent as it is, or joined to its staged start inside S3 and copied into place. */
  private async storePart(piece: Piece, prefix: StagingState | null): Promise<Stored> {
    const { objects, multipart } = this.deps;
    const key = this.upload.storageKey;
    const body = await piece.seal();
    const signal = this.abort.signal;
    const obsolete = prefix?.tail ? [prefix.tail.key] : [];
    let etag: string;
    if (prefix?.uploadId) {
      const staged = stagingKey(key, piece.partNumber);
      const last = prefix.segments.length + 1;
      // A staging upload aborted behind Freight's back, or already completed by a join that was never recorded
      // (consumed): its segments are not what S3 holds, so the offset goes back (store.ts rewind).
      const lastEtag = await objects.uploadPart(staged, prefix.uploadId, last, body, signal).catch((error: unknown) => {
        throw stagedBytesLost(error, `staging upload of part ${piece.partNumber}`);
      });
      await multipart
        .complete(staged, prefix.uploadId, [...prefix.segments, { partNumber: last, size: body.size, etag: lastEtag }])
        .catch((error: unknown) => {
          throw stagedBytesLost(error, `staging upload of part ${piece.partNumber}`);
        });
      etag = await objects
        .copyPart(key, await this.mainUpload(), piece.partNumber, staged, signal)
        .catch((error: unknown) => {
          throw mainUploadLost(error);
        });
      obsolete.push(staged);
    } else {
      etag = await objects
        .uploadPart(key, await this.mainUpload(), piece.partNumber, body, signal)
        .catch((error: unknown) => {
          throw mainUploadLost(error);
        });
    }
    const size = piece.end - this.layout.start(piece.partNumber);
    return { advance: { to: piece.end, staging: null, part: { partNumber: piece.partNumber, size, etag } }, obsolete };
  }

  /**
   * The end of the body, inside a part: 5 MiB or more become the next segment of the part's staging upload,
   * less becomes the part's tail object (replacing the one it was read back from).
   */
  private async stage(piece: Piece, prefix: StagingState | null): Promise<Stored> {
    const { objects, multipart } = this.deps;
    const key = this.upload.storageKey;
    const body = await piece.seal();
    const signal = this.abort.signal;
    const obsolete = prefix?.tail ? [prefix.tail.key] : [];
    const segments = prefix?.segments ?? [];
    let staging: StagingState;
    if (piece.size >= MIN_SEGMENT) {
      const staged = stagingKey(key, piece.partNumber);
      const uploadId = prefix?.uploadId ?? (await multipart.create(staged));
      const partNumber = segments.length + 1;
      const etag = await objects.uploadPart(staged, uploadId, partNumber, body, signal).catch((error: unknown) => {
        throw prefix?.uploadId ? stagedBytesLost(error, `staging upload of part ${piece.partNumber}`) : error;
      });
      staging = {
        partNumber: piece.partNumber,
        uploadId,
        segments: [...segments, { partNumber, size: piece.size, etag }],
        tail: null,
      };
    } else {
      const tail = tailKey(key, piece.start, piece.end);
      await objects.putObject(tail, body, signal);
      staging = {
        partNumber: piece.partNumber,
        uploadId: prefix?.uploadId ?? null,
        segments,
        tail: { key: tail, size: piece.size },
      };
    }
    // The offset this step records counts the segments before it: S3 must still hold them (a staging upload
    // aborted or completed behind Freight's back would otherwise be claimed by a 204 and by every HEAD after it).
    if (staging.uploadId && prefix?.uploadId) {
      const listed = await multipart.listParts(stagingKey(key, piece.partNumber), staging.uploadId);
      segmentsHeld(listed, staging.segments, `staging upload of part ${piece.partNumber}`);
    }
    return { advance: { to: piece.end, staging }, obsolete };
  }

  /** Objects no record points to any more: removed in the background (what fails here, completion removes). */
  private removeLater(keys: string[]): void {
    this.deps.objects.deleteObjects(keys).catch((error: unknown) => {
      this.deps.log.warn({ err: error, uploadId: this.upload.id }, 'could not remove staged objects; completion will');
    });
  }
}
