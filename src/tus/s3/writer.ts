/**
 * One PATCH written to S3: the body is cut into pieces at the upload's part boundaries, and a part larger than
 * a segment (WriterDeps.segmentSize) into segments of its staging upload; a piece that fills its part becomes
 * that part (directly, or through its staging upload when its start is staged), and the piece the body ends in
 * is staged. A piece is buffered on temp disk without a part slot and takes one only to be sent (slots.ts), so
 * no slot is ever held while a client's bytes are awaited, and none longer than one piece's send. Pieces go to
 * S3 in parallel (at most S3_PART_CONCURRENCY of one write at once), but the stored offset moves strictly in
 * order, each step by one guarded UPDATE after S3 holds its bytes: the offset Freight reports is always a prefix
 * of what S3 holds, never past a missing part.
 *
 * When a step fails, reading stops, nothing after the failed step is recorded, and the error goes to the
 * client (503 for storage); the offset stays where the last recorded step left it. A wait for a slot ends when
 * the request is asked to stop or its client goes away: reading stops there, and the write returns the offset
 * its steps before recorded (the lock is free for the request that asked).
 *
 * The upload's running SHA-256 is fed the body as it is read, and its state at each step's end is recorded with
 * that step. A PATCH with Upload-Checksum records nothing before its whole body has arrived and matched: its steps
 * go to S3 as they fill, but are recorded only then (or never: its bytes are discarded, the offset does not move).
 */
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { FileUpload, StagingState } from '../../db/schema.js';
import type { StoredAdvance } from '../../db/repository.js';
import type { S3MultipartStorage, StoredPart } from '../../storage/multipart.js';
import type { S3Objects } from '../../storage/objects.js';
import type { UploadService } from '../../uploads/service.js';
import { checksumMismatch } from '../../errors.js';
import { RunningDigest, hashes } from '../../uploads/digest.js';
import { BodyReader, type StallRule } from '../body.js';
import type { WriteOptions } from '../upload-record.js';
import { MIN_SEGMENT, PartLayout, stagingKey, tailKey } from './layout.js';
import { type PartStaging, partStaging, takeTail } from './part-staging.js';
import { Piece } from './piece.js';
import { type PartSlots, SlotWaitEnded } from './slots.js';
import { completionFailure, mainUploadLost, segmentsHeld, stagedBytesLost } from './losses.js';

export interface WriterDeps {
  uploads: UploadService;
  multipart: S3MultipartStorage;
  objects: S3Objects;
  slots: PartSlots;
  /** This process's own temp directory (part files). */
  tempDir: string;
  /**
   * A part larger than this is sent in segments of this size (the last one smaller) to its staging upload and
   * joined inside S3: what one piece holds on temp disk, and what one slot sends at most.
   */
  segmentSize: number;
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
  /** A wait for a slot ended (stop asked for, or the client went away): nothing after it is recorded. */
  private ended = false;
  private readonly abort = new AbortController();
  /** Ends waits for a slot: the write failed, the request is asked to stop, or its client went away. */
  private waits: AbortSignal = this.abort.signal;
  /** Steps whose pieces are on temp disk and not yet stored (or failed). */
  private readonly inFlight = new Set<Promise<unknown>>();
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

  /**
   * Reads the body to its end (or until it stalls, is stopped, or a step fails) and returns the offset now stored.
   * `request`: the HTTP request the body came with, when `source` holds bytes already read from it.
   */
  async run(source: Readable, options: WriteOptions = {}, request: Readable = source): Promise<number> {
    const digest = hashes(this.deps.hashing, this.upload.metadata)
      ? await RunningDigest.resume(this.upload.hashState, this.committed)
      : undefined;
    // The request's connection: once it closes, nobody waits for the answer, and no slot is waited for.
    const socket = (request as Readable & { socket?: Socket }).socket;
    const gone = new AbortController();
    const onClose = () => gone.abort(new Error('the client went away'));
    if (socket?.destroyed) onClose();
    else socket?.once('close', onClose);
    this.waits = AbortSignal.any([this.abort.signal, gone.signal, ...(options.stop ? [options.stop] : [])]);
    try {
      return await this.write(new BodyReader(source, { ...options, stall: this.deps.stall }), digest, options);
    } finally {
      socket?.off('close', onClose);
      // The states already asked for still arrive: the hasher is freed once they have.
      digest?.close();
    }
  }

  private async write(reader: BodyReader, digest: RunningDigest | undefined, options: WriteOptions): Promise<number> {
    let settleChecksum: (matched: boolean) => void = () => {};
    if (options.checksum) this.verified = new Promise((resolve) => (settleChecksum = resolve));
    let piece = this.firstPiece();
    let staging = this.stagingOf(piece.partNumber);
    let from = this.committed;
    try {
      reading: for await (const chunk of reader.chunks()) {
        let rest = chunk;
        while (rest.length > 0) {
          if (this.failure || this.ended) break reading;
          const partEnd = this.layout.end(piece.partNumber);
          const take = rest.subarray(0, Math.min(partEnd - piece.end, this.deps.segmentSize - piece.size));
          if (take.length === 0) throw new Error(`a body past the end of upload ${this.upload.id}`);
          await piece.append(take);
          const behind = digest?.update(take);
          if (behind) await behind;
          rest = rest.subarray(take.length);
          if (piece.end === partEnd) {
            const before = staging;
            from = this.schedule(piece, from, digest?.save(), () => this.storePart(piece, before));
            piece = this.newPiece(piece.partNumber + 1, piece.end);
            staging = this.stagingOf(piece.partNumber);
          } else if (piece.size === this.deps.segmentSize) {
            from = this.schedule(piece, from, digest?.save(), this.sendSegment(piece, staging));
            piece = this.newPiece(piece.partNumber, piece.end);
          } else continue;
          // No more pieces of this write on temp disk than it may send at once: a client faster than S3 waits.
          while (this.inFlight.size >= this.deps.slots.capacity) await Promise.race(this.inFlight);
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
    settleChecksum(matched && !this.failure && !this.ended);
    if (!matched)
      this.fail(
        checksumMismatch(
          reader.complete
            ? 'the body does not have its Upload-Checksum; nothing was recorded'
            : 'the body did not arrive whole, so its Upload-Checksum cannot match; nothing was recorded',
        ),
      );
    if (!this.failure && !this.ended && piece.fresh > 0) {
      const ending = piece;
      this.schedule(
        ending,
        from,
        digest?.save(),
        ending.size >= MIN_SEGMENT ? this.sendSegment(ending, staging) : () => this.stageTail(ending, staging),
      );
    } else {
      await piece.release();
    }
    await this.chain;
    if (this.failure) throw this.failure.error;
    return this.committed;
  }

  /** The first piece continues the part the stored offset is in, after its staged tail (read back first). */
  private firstPiece(): Piece {
    const tail = this.upload.staging?.tail;
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
      prefix,
    });
  }

  private newPiece(partNumber: number, start: number): Piece {
    return new Piece(partNumber, start, { dir: this.deps.tempDir, slots: this.deps.slots });
  }

  /** The staging of part `partNumber`: the recorded one if it is that part's (the write's first), else a new one. */
  private stagingOf(partNumber: number): PartStaging {
    const create = () => this.deps.multipart.create(stagingKey(this.upload.storageKey, partNumber));
    return partStaging(partNumber, this.upload.staging, create);
  }

  /** A send to S3, holding a part slot while it runs (and only then). */
  private send<T>(work: () => Promise<T>): Promise<T> {
    return this.deps.slots.sending(this.waits, work);
  }

  /**
   * Starts `store` for the piece now and records its result after every earlier step is recorded.
   * Returns the offset the step will have stored, where the next one starts.
   */
  private schedule(
    piece: Piece,
    from: number,
    hashState: Promise<string> | undefined,
    store: () => Promise<Stored>,
  ): number {
    const stored = store().finally(() => piece.release());
    stored.catch(() => {});
    hashState?.catch(() => {});
    const settled = stored.then(
      () => {},
      () => {},
    );
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    this.chain = this.chain.then(async () => {
      try {
        const { advance, obsolete } = await stored;
        if (this.failure || this.ended || !(await this.verified)) return;
        await this.deps.uploads.ledger.advanceStoredOffset(this.upload.id, {
          from,
          ...advance,
          hashState: (await hashState) ?? null,
        });
        this.committed = advance.to;
        if (obsolete.length > 0) this.removeLater(obsolete);
      } catch (error) {
        if (error instanceof SlotWaitEnded) this.ended = true;
        else this.fail(error);
      }
    });
    return piece.end;
  }

  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = { error };
    this.abort.abort(error);
  }

  /**
   * A failure of the staging upload: staged bytes lost (the offset goes back to the part's start, store.ts) when
   * the write began with recorded segments in it; the write's own staging upload failing is an ordinary failure
   * (nothing of it was recorded, and the next write starts another).
   */
  private lostIfRecorded(error: unknown, staging: PartStaging): unknown {
    return staging.recorded.length > 0 ? stagedBytesLost(error, `staging upload of part ${staging.partNumber}`) : error;
  }

  /** The recorded segments are still in S3 as recorded (checked before a step that counts them is recorded). */
  private async segmentsStillHeld(staging: PartStaging, uploadId: string): Promise<void> {
    if (staging.recorded.length === 0) return;
    const listed = await this.deps.multipart.listParts(
      stagingKey(this.upload.storageKey, staging.partNumber),
      uploadId,
    );
    segmentsHeld(listed, staging.recorded, `staging upload of part ${staging.partNumber}`);
  }

  /**
   * A full part: sent as it is, or, when its start is staged as segments, sent as the last segment of its
   * staging upload, which S3 then completes and copies into place.
   */
  private async storePart(piece: Piece, staging: PartStaging): Promise<Stored> {
    const { objects, multipart } = this.deps;
    const key = this.upload.storageKey;
    const obsolete = takeTail(staging);
    const body = await piece.seal();
    const signal = this.abort.signal;
    const size = piece.end - this.layout.start(piece.partNumber);
    let etag: string;
    if (staging.segments.length > 0) {
      const staged = stagingKey(key, piece.partNumber);
      const uploadId = await staging.uploadId();
      const last = staging.segments.length + 1;
      // A staging upload aborted behind Freight's back, or already completed by a join that was never recorded
      // (consumed): its segments are not what S3 holds, so the offset goes back (store.ts rewind).
      const lastEtag = await this.send(() => objects.uploadPart(staged, uploadId, last, body, signal)).catch(
        (error: unknown) => {
          throw this.lostIfRecorded(error, staging);
        },
      );
      const segments = [
        ...(await Promise.all(staging.segments)),
        { partNumber: last, size: body.size, etag: lastEtag },
      ];
      await multipart.complete(staged, uploadId, segments).catch(async (error: unknown) => {
        // Only recorded segments lost rewind the offset (lostIfRecorded); this write's own are an ordinary failure.
        if (staging.recorded.length === 0) throw error;
        const what = `staging upload of part ${piece.partNumber}`;
        throw await completionFailure(error, () => multipart.listParts(staged, uploadId), what);
      });
      etag = await objects
        .copyPart(key, await this.mainUpload(), piece.partNumber, staged, signal)
        .catch((error: unknown) => {
          throw mainUploadLost(error);
        });
      obsolete.push(staged);
    } else {
      const uploadId = await this.mainUpload();
      etag = await this.send(() => objects.uploadPart(key, uploadId, piece.partNumber, body, signal)).catch(
        (error: unknown) => {
          throw mainUploadLost(error);
        },
      );
    }
    return { advance: { to: piece.end, staging: null, part: { partNumber: piece.partNumber, size, etag } }, obsolete };
  }

  /**
   * A segment of the part's staging upload (5 MiB or more, or a part's share of a segment size): its number is
   * taken now, in order, and it goes to S3 in parallel with the segments before it.
   */
  private sendSegment(piece: Piece, staging: PartStaging): () => Promise<Stored> {
    const partNumber = staging.segments.length + 1;
    const obsolete = takeTail(staging);
    const upTo = staging.segments.slice();
    const segment = (async (): Promise<StoredPart> => {
      const body = await piece.seal();
      const uploadId = await staging.uploadId();
      const staged = stagingKey(this.upload.storageKey, piece.partNumber);
      const etag = await this.send(() =>
        this.deps.objects.uploadPart(staged, uploadId, partNumber, body, this.abort.signal),
      ).catch((error: unknown) => {
        throw this.lostIfRecorded(error, staging);
      });
      return { partNumber, size: piece.size, etag };
    })();
    segment.catch(() => {});
    staging.segments.push(segment);
    return async () => {
      const stored = await segment;
      const uploadId = await staging.uploadId();
      await this.segmentsStillHeld(staging, uploadId);
      const segments = [...(await Promise.all(upTo)), stored];
      return {
        advance: { to: piece.end, staging: { partNumber: piece.partNumber, uploadId, segments, tail: null } },
        obsolete,
      };
    };
  }

  /** The end of the body, under 5 MiB inside a part: the part's tail object (replacing the one read back). */
  private async stageTail(piece: Piece, staging: PartStaging): Promise<Stored> {
    const obsolete = takeTail(staging);
    const body = await piece.seal();
    const tail = tailKey(this.upload.storageKey, piece.start, piece.end);
    await this.send(() => this.deps.objects.putObject(tail, body, this.abort.signal));
    const segments = await Promise.all(staging.segments);
    const uploadId = segments.length > 0 ? await staging.uploadId() : null;
    // The offset this step records counts the segments before it: S3 must still hold them (a staging upload
    // aborted or completed behind Freight's back would otherwise be claimed by a 204 and by every HEAD after it).
    if (uploadId) await this.segmentsStillHeld(staging, uploadId);
    const advanced: StagingState = {
      partNumber: piece.partNumber,
      uploadId,
      segments,
      tail: { key: tail, size: piece.size },
    };
    return { advance: { to: piece.end, staging: advanced }, obsolete };
  }

  /** Objects no record points to any more: removed in the background (what fails here, completion removes). */
  private removeLater(keys: string[]): void {
    this.deps.objects.deleteObjects(keys).catch((error: unknown) => {
      this.deps.log.warn({ err: error, uploadId: this.upload.id }, 'could not remove staged objects; completion will');
    });
  }
}
