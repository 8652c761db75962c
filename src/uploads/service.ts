/**
 * The upload-state service: the one place that decides what an upload's state is and may become.
 * The tus path (through its hooks and stores) and the direct path (through its routes) both call it;
 * neither writes upload state any other way.
 *
 *   pending ──first bytes──▶ uploading ──all parts verified──▶ completed
 *      │                      │   ▲
 *      │                      ▼   │ progress again
 *      │                     failed
 *      └──────────┬───────────┘
 *                 ▼
 *        aborted (DELETE) / expired (idle past expires_at) / lost (storage lost its bytes)
 *
 * Expiry measures idleness, not age: expires_at is UPLOAD_EXPIRY after the upload's last progress (its creation,
 * each stored byte of tus, each part signed or found stored of direct), and an upload a writer holds (its tus
 * lock) or a request is completing (its claim) is never expired, however long that takes.
 */
import {
  FreightError,
  badRequest,
  conflict,
  digestMismatch,
  gone,
  notFound,
  offsetMismatch,
  partsMismatch,
  tooManyUploads,
  tooManyUploadsKept,
} from '../errors.js';
import { metadataProblem, type MetadataLimits } from './metadata.js';
import { RunningDigest } from './digest.js';
import type { StoredAdvance, UploadRepository } from '../db/repository.js';
import type { FileUpload, UploadProtocol } from '../db/schema.js';
import {
  type CountedChange,
  goneReason,
  hasEnded,
  isCompleted,
  isOpen,
  wasTerminated,
  TRANSITIONS,
  type Transition,
  type TransitionName,
} from './lifecycle.js';
import type { Metrics } from '../ops/metrics.js';
import { partCount } from './planner.js';
import type { StoredPart } from '../storage/multipart.js';
import { checkParts, describePartProblems, sumOfSizes, type ExpectedPart } from './parts.js';

export interface NewUpload {
  id: string;
  userId: string;
  protocol: UploadProtocol;
  filename: string | null;
  mimeType: string | null;
  /** null while the length is deferred. */
  totalSize: number | null;
  storageKey: string;
  partSize?: number | null;
  s3UploadId?: string | null;
  metadata?: Record<string, string | null> | null;
  /** tus: 0 at creation (nothing stored yet). */
  storedOffset?: number | null;
  /** tus concatenation: a partial upload, or a final one made of `concatPartials`. */
  concat?: 'partial' | 'final' | null;
  concatPartials?: string[] | null;
}

/**
 * The uploads whose tus lock requests of this process hold or wait for (WatchedLocker). PostgreSQL's advisory
 * locks are checked in SQL, on every instance; the in-memory locker of the embedded PGlite only here.
 */
export interface UploadLockWatch {
  /** Runs `work` with those uploads' ids; meanwhile no request of this process starts to take a lock. */
  excluding<T>(work: (held: ReadonlySet<string>) => Promise<T>): Promise<T>;
}

const UNBOUNDED_METADATA: MetadataLimits = {
  maxSize: Number.POSITIVE_INFINITY,
  maxValueSize: Number.POSITIVE_INFINITY,
};

/** Expiry candidates looked at per statement (each takes an advisory lock until its statement commits). */
const EXPIRY_BATCH = 100;

/** Throws 410 for an upload that ended (lifecycle ENDED): it is gone. */
function ended(upload: FileUpload): void {
  const reason = goneReason(upload.status, upload.error);
  if (reason !== undefined) throw gone(reason);
}

export interface UploadServiceOptions {
  /** UPLOAD_EXPIRY: how long an upload may go without progress before it expires. */
  expiryMs: number;
  /**
   * Asked before every creation, before anything is recorded (WEBHOOK_PRE_CREATE): throws to refuse the upload
   * (the error is the client's answer).
   */
  admit?: ((upload: NewUpload) => Promise<void>) | undefined;
  /** USER_MAX_OPEN_UPLOADS: open uploads (pending, uploading, failed) one user may have at once; 0 or unset: no limit. */
  maxOpenUploadsPerUser?: number;
  /** USER_MAX_UPLOADS: upload rows one user may have kept, whatever their status; 0 or unset: no limit. */
  maxUploadsPerUser?: number;
  /** METADATA_MAX_SIZE and METADATA_MAX_VALUE_SIZE; unset: no bound on sizes (the shape is checked anyway). */
  metadataLimits?: MetadataLimits;
  now?: () => Date;
  /** Counts state changes and stored tus bytes (GET /metrics). */
  metrics?: Metrics | undefined;
  /** The tus locks this process holds, which expiry must respect (see UploadLockWatch). */
  locks?: UploadLockWatch | undefined;
}

export class UploadService {
  constructor(
    private readonly repo: UploadRepository,
    private readonly options: UploadServiceOptions,
  ) {}

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  /** The expiry of an upload that makes progress now: UPLOAD_EXPIRY from now. */
  private idleExpiry(): Date {
    return new Date(this.now().getTime() + this.options.expiryMs);
  }

  /** Counts a state change that happened (a guarded UPDATE that returned its row). */
  private counted<T extends FileUpload | undefined>(event: CountedChange, row: T): T {
    if (row) this.options.metrics?.countUpload(event, row.protocol);
    return row;
  }

  /** One transition of the lifecycle (guarded, its webhook event in the same statement), counted as the table says. */
  private async change(
    id: string,
    name: TransitionName,
    set?: Parameters<UploadRepository['transition']>[2],
  ): Promise<FileUpload | undefined> {
    const row = await this.repo.transition(id, name, set);
    const counted = (TRANSITIONS[name] as Transition).counted;
    return counted === undefined ? row : this.counted(counted, row);
  }

  /**
   * Records a new upload (both paths create through here, before storage is asked for anything), once the
   * pre-create check (if any) allowed it. Beyond the user's limit of open uploads it is 429 and nothing is
   * recorded; an upload stops counting once it is completed, aborted, expired or lost.
   */
  async create(input: NewUpload): Promise<FileUpload> {
    const problem = metadataProblem(input.metadata, this.options.metadataLimits ?? UNBOUNDED_METADATA);
    if (problem) throw badRequest(problem);
    await this.options.admit?.(input);
    const now = this.now();
    const row = {
      ...input,
      status: 'pending' as const,
      createdAt: now,
      updatedAt: now,
      expiresAt: new Date(now.getTime() + this.options.expiryMs),
    };
    const limit = this.options.maxOpenUploadsPerUser ?? 0;
    const keptLimit = this.options.maxUploadsPerUser ?? 0;
    let created: FileUpload;
    if (limit === 0 && keptLimit === 0) created = await this.repo.insertUpload(row);
    else {
      const result = await this.repo.insertUploadWithinLimit(row, limit, now, keptLimit);
      if ('open' in result) {
        throw tooManyUploads(
          `too many open uploads: you have ${result.open} and this server allows ${limit} per user; complete or abort one before starting another`,
        );
      }
      if ('kept' in result) {
        throw tooManyUploadsKept(
          `too many uploads kept: you have ${result.kept} (completed ones, open ones, and ended ones not yet removed) and this server keeps ${keptLimit} per user; ended uploads are removed some time after they end, completed ones only by an operator`,
        );
      }
      created = result.created;
    }
    this.options.metrics?.countUpload('created', created.protocol);
    return created;
  }

  /**
   * The caller's upload. Another user's upload is answered exactly like a missing one: 404; so is, when
   * `protocol` is given, an upload of the other protocol (each path acts only on its own uploads).
   */
  async getOwned(userId: string, id: string, protocol?: UploadProtocol): Promise<FileUpload> {
    const upload = await this.repo.findOwnedUpload(userId, id);
    if (!upload || (protocol !== undefined && upload.protocol !== protocol)) throw notFound();
    return upload;
  }

  /**
   * The caller's upload, for a request that continues it. An aborted upload is gone; an open upload idle past
   * its expiry is marked `expired` here and is gone too (tus: "The Server SHOULD respond with the 410 Gone status
   * if the Server is keeping track of expired uploads"), unless a writer holds it or a request is completing it.
   */
  async getOwnedLive(userId: string, id: string, protocol?: UploadProtocol): Promise<FileUpload> {
    return this.live(await this.getOwned(userId, id, protocol));
  }

  /**
   * The caller's live tus upload for a resume check, and whether a request of another instance writes it now
   * (one query; see UploadRepository.findOwnedUploadProbingWriter).
   */
  async getOwnedLiveProbingWriter(userId: string, id: string): Promise<{ upload: FileUpload; writing: boolean }> {
    const found = await this.repo.findOwnedUploadProbingWriter(userId, id);
    if (found?.upload.protocol !== 'tus') throw notFound();
    return { upload: await this.live(found.upload), writing: found.writing };
  }

  private async live(upload: FileUpload): Promise<FileUpload> {
    ended(upload);
    if (isOpen(upload.status) && upload.expiresAt && upload.expiresAt <= this.now()) {
      const [expired] = await this.expireIdle([upload.id]);
      if (expired) throw gone(`the upload expired at ${upload.expiresAt.toISOString()}`);
      // A writer holds it, or a request is completing it, or it made progress meanwhile: it lives (unless
      // another request ended it meanwhile).
      const current = await this.repo.findUpload(upload.id);
      if (!current) throw notFound();
      ended(current);
      return current;
    }
    return upload;
  }

  /**
   * The caller's upload, for a DELETE (tus termination). Unlike the requests that continue an upload, a DELETE
   * also takes one that expired, was lost or was rejected (what is left of it in storage is removed: 204); a
   * terminated one is gone (410), as tus asks of every request after a termination.
   */
  async getOwnedForDeletion(userId: string, id: string, protocol?: UploadProtocol): Promise<FileUpload> {
    const upload = await this.getOwned(userId, id, protocol);
    if (wasTerminated(upload.status)) throw gone('the upload was terminated');
    return upload;
  }

  /**
   * Deletes an upload (DELETE on either path): an open upload is aborted, or expired if its time is up; one that
   * already ended (expired, lost, rejected, aborted) stays as it is; a completed upload is aborted too when
   * `completed` allows it (tus termination: its object goes), else it cannot be deleted (409). Returns the upload
   * as it is now; the caller then removes what storage still holds of it (removal is idempotent, and if storage
   * fails now the janitor finishes it).
   */
  async delete(id: string, options: { completed?: boolean } = {}): Promise<FileUpload> {
    // The guarded change fails only if another request ended the upload meanwhile: a second look decides.
    for (let attempt = 0; attempt < 2; attempt++) {
      const upload = await this.getUploadForStorage(id);
      if (isCompleted(upload.status)) {
        if (!options.completed) throw conflict('the upload is completed and cannot be deleted');
        const terminated = await this.change(id, 'terminate', { lockedUntil: null });
        if (terminated) return terminated;
        continue;
      }
      if (!isOpen(upload.status)) return upload;
      const expired = upload.expiresAt !== null && upload.expiresAt <= this.now();
      const ended = await this.change(id, expired ? 'expire' : 'abort', { lockedUntil: null });
      if (ended) return ended;
    }
    throw conflict('the upload changed while it was being deleted; retry');
  }

  /**
   * When an unfinished upload expires, as a request that stored up to `offset` leaves it (Upload-Expires): bytes
   * stored were progress, which moved its expiry to UPLOAD_EXPIRY from then (advanceStoredOffset); none, no change.
   */
  expiresAtAfter(upload: FileUpload, offset: number): Date | null {
    return offset !== upload.storedOffset ? this.idleExpiry() : upload.expiresAt;
  }

  /** The upload's record, if any, for storage code acting on an upload whose owner was already checked. */
  async findForStorage(id: string): Promise<FileUpload | undefined> {
    return this.repo.findUpload(id);
  }

  /** Any upload by id, for storage code acting on an upload whose owner was already checked. */
  async getUploadForStorage(id: string): Promise<FileUpload> {
    const upload = await this.findForStorage(id);
    if (!upload) throw notFound();
    return upload;
  }

  async findByS3UploadId(userId: string, s3UploadId: string, protocol?: UploadProtocol): Promise<FileUpload> {
    const upload = await this.repo.findOwnedUploadByS3UploadId(userId, s3UploadId);
    if (!upload || (protocol !== undefined && upload.protocol !== protocol)) throw notFound();
    return upload;
  }

  /** The S3 multipart upload of an upload that had none: false if another request recorded one first. */
  async attachS3Upload(id: string, s3UploadId: string): Promise<boolean> {
    return this.repo.setOnce(id, { s3UploadId });
  }

  /** tus creation-defer-length: the length arrives with a later PATCH, once. */
  async declareLength(id: string, totalSize: number): Promise<void> {
    const upload = await this.getUploadForStorage(id);
    // A length smaller than the bytes already stored is a bad request (the PATCH route checks it before it asks;
    // the DataStore contract may ask directly); a second declaration is a conflict.
    if (upload.storedOffset !== null && totalSize < upload.storedOffset) {
      throw badRequest(`Upload-Length ${totalSize} is smaller than the ${upload.storedOffset} bytes already stored`);
    }
    if (!(await this.repo.setOnce(id, { totalSize }))) {
      throw conflict('the upload length was already declared');
    }
  }

  /**
   * Storage now holds the upload up to `advance.to` (and the part it completed, if any): the one way the
   * stored offset of a tus upload moves. Only from `advance.from`: if another request moved it meanwhile (it
   * took over the upload), nothing is recorded and this request must stop (409: the client asks for the
   * offset and resumes).
   */
  async advanceStoredOffset(id: string, advance: StoredAdvance): Promise<void> {
    if (await this.repo.advanceStoredOffset(id, { ...advance, expiresAt: this.idleExpiry() })) {
      if (advance.to > advance.from) this.options.metrics?.tusBytesReceived.inc(advance.to - advance.from);
      return;
    }
    const current = await this.repo.findUpload(id);
    // A request that lost a race to the request that completed the upload: 409 (its client asks for the offset
    // and finds the upload done); only a terminated, expired or lost upload is gone.
    if (current && hasEnded(current.status)) throw gone(`the upload is ${current.status}`);
    throw offsetMismatch(
      `the upload moved on to offset ${current?.storedOffset} while this request wrote from ${advance.from}; ask for its offset (HEAD) and resume`,
    );
  }

  /** Staged bytes were lost in storage: the upload goes back to the start of part `partNumber` (`to`), the reason kept. */
  async rewindStoredOffset(id: string, from: number, partNumber: number, to: number, reason: string): Promise<void> {
    if (await this.repo.rewindStoredOffset(id, from, partNumber, to)) {
      await this.change(id, 'fail', { error: reason });
    }
  }

  /** Final uploads (tus concatenation) not assembled yet, and not given up. */
  async unfinishedFinals(): Promise<FileUpload[]> {
    return this.repo.unfinishedFinals();
  }

  /**
   * Open uploads of `protocol` idle past their expiry, now marked expired (the caller removes their storage); those
   * a writer holds or a request is completing are left alone.
   */
  async expireOpenUploads(protocol: UploadProtocol): Promise<FileUpload[]> {
    const now = this.now();
    const expired: FileUpload[] = [];
    for (let after: string | undefined; ; ) {
      const batch = await this.repo.listExpiredOpenUploads(protocol, now, { limit: EXPIRY_BATCH, after });
      expired.push(...(await this.expireIdle(batch.map((upload) => upload.id))));
      if (batch.length < EXPIRY_BATCH) return expired;
      after = batch.at(-1)?.id;
    }
  }

  /**
   * Those of `ids` still idle past their expiry, marked expired; returns them. Not one whose tus lock is held,
   * here (in memory) or by any session (in SQL), nor one a request is completing.
   */
  async expireIdle(ids: readonly string[]): Promise<FileUpload[]> {
    if (ids.length === 0) return [];
    const now = this.now();
    const expire = (held: ReadonlySet<string>) =>
      this.repo.expireIdleUploads(
        ids.filter((id) => !held.has(id)),
        now,
      );
    const expired = await (this.options.locks ? this.options.locks.excluding(expire) : expire(new Set()));
    for (const upload of expired) this.counted('expired', upload);
    return expired;
  }

  /** The uploads expireOpenUploads would expire now (a dry run changes nothing). */
  async expiredOpenUploads(protocol: UploadProtocol): Promise<FileUpload[]> {
    return this.repo.listExpiredOpenUploads(protocol, this.now());
  }

  /**
   * A part of a direct upload was signed: its client is about to send it, so the upload lives at least
   * UPLOAD_EXPIRY from now, and at least as long as the URL (`validForMs`): expiry never spoils a URL it handed out.
   */
  async recordSignedParts(id: string, validForMs: number): Promise<void> {
    await this.repo.extendExpiry(id, new Date(this.now().getTime() + Math.max(this.options.expiryMs, validForMs)));
  }

  /**
   * The upload if it ended (aborted, expired, lost, rejected) while a request was completing it: that request's
   * object must not stay (nothing completed is ever expired). undefined while it is open or completed.
   */
  async endedMeanwhile(id: string): Promise<FileUpload | undefined> {
    const current = await this.repo.findUpload(id);
    return current && hasEnded(current.status) ? current : undefined;
  }

  /** Uploads that ended (lifecycle ENDED) before `before`, oldest first: the janitor prunes them. */
  async prunableUploads(before: Date, limit: number): Promise<FileUpload[]> {
    return this.repo.listPrunableUploads(before, limit);
  }

  async countPrunableUploads(before: Date): Promise<number> {
    return this.repo.countPrunableUploads(before);
  }

  /**
   * Deletes the rows of those of `ids` that still ended before `before` (a row that changed meanwhile stays), with
   * their parts and delivered (or given up) webhook events; returns how many. Completed uploads are never pruned:
   * they are their owners' files.
   */
  async pruneEndedUploads(ids: readonly string[], before: Date): Promise<number> {
    return this.repo.deleteEndedUploads(ids, before);
  }

  /** The records of these uploads that exist, for the janitor holding storage against them. */
  async findManyForStorage(ids: readonly string[]): Promise<Map<string, FileUpload>> {
    return new Map((await this.repo.findUploads(ids)).map((upload) => [upload.id, upload]));
  }

  /**
   * What becomes of an S3 multipart upload found in the bucket under an upload's key (`upload` undefined: no row
   * knows that upload). `own`: the upload's own multipart upload; otherwise the staging upload of part
   * `stagingPart` (tus). An open upload keeps the one it recorded; an upload that ended (or completed) needs none
   * of them any more: abort now. Anything else may be on its way to being recorded (a row learns an UploadId only
   * once S3 answered, a staging upload once its first segment is stored): abort once older than the expiry.
   */
  multipartUploadFate(
    upload: FileUpload | undefined,
    found: { uploadId: string } & ({ own: true } | { own: false; stagingPart: number }),
  ): 'keep' | 'abort' | 'abort-if-old' {
    if (!upload) return 'abort-if-old';
    const recorded = found.own
      ? upload.s3UploadId === found.uploadId
      : upload.staging?.uploadId === found.uploadId && upload.staging.partNumber === found.stagingPart;
    if (isOpen(upload.status)) return recorded ? 'keep' : 'abort-if-old';
    // A completed upload's own multipart upload is consumed by its completion: still listed, it is S3's listing
    // lagging behind (or a bucket in trouble), not a leftover to abort at once.
    if (isCompleted(upload.status) && recorded && found.own) return 'abort-if-old';
    return 'abort';
  }

  /**
   * What becomes of the staged objects (`<key>.staging/`) of an upload: kept while it is open (they are bytes of
   * the part under way), removed once it completed or ended, and, when no row knows the upload, removed once
   * older than the expiry.
   */
  stagedObjectsFate(upload: FileUpload | undefined): 'keep' | 'remove' | 'remove-if-old' {
    if (!upload) return 'remove-if-old';
    return isOpen(upload.status) ? 'keep' : 'remove';
  }

  /**
   * An upload whose multipart upload S3 no longer has: completed if the object is there at its full length
   * (an earlier assembly whose answer was lost), otherwise its bytes are lost: failed, and gone (410).
   */
  async recognizeObject(upload: FileUpload, objectSize: number | undefined): Promise<void> {
    if (upload.totalSize !== null && objectSize === upload.totalSize) {
      await this.markCompleted(upload.id, upload.totalSize);
      return;
    }
    throw await this.markLost(upload.id, 'the multipart upload no longer exists in storage');
  }

  /**
   * Storage no longer holds the upload's bytes: it can never be resumed or completed. Its offset goes back to 0
   * (it must not claim bytes that are gone), and the answer is 410 with the reason.
   */
  async markLost(id: string, reason: string): Promise<FreightError> {
    await this.change(id, 'lose', {
      error: reason,
      storedOffset: 0,
      bytesReceived: 0,
      staging: null,
      lockedUntil: null,
    });
    return gone(`the upload cannot be resumed: ${reason}`);
  }

  /** The parts S3 lists checked against the plan and the recorded ETags; a mismatch fails the upload (409). */
  async verifyStoredParts(upload: FileUpload, stored: readonly StoredPart[]): Promise<StoredPart[]> {
    try {
      return await this.verifyParts(upload, stored);
    } catch (error) {
      if (error instanceof FreightError) await this.markFailed(upload.id, error.message);
      throw error;
    }
  }

  /**
   * A final upload assembled by S3 from its partial uploads: its parts recorded and its offset at its length, in
   * one step (from 0, so that only one assembly records it).
   */
  async recordAssembled(id: string, parts: readonly StoredPart[], length: number): Promise<void> {
    await this.repo.upsertParts(
      id,
      parts.map((part) => ({ ...part, status: 'stored' as const })),
    );
    const assembled = { from: 0, to: length, staging: null, hashState: null, expiresAt: this.idleExpiry() };
    if (!(await this.repo.advanceStoredOffset(id, assembled))) {
      throw conflict('the final upload was assembled by another request meanwhile');
    }
  }

  /** S3 holds `bytes` bytes of a direct upload: more than recorded is progress, which moves its expiry. */
  async recordProgress(id: string, bytes: number): Promise<void> {
    if (bytes > 0) await this.repo.recordProgress(id, bytes, this.idleExpiry());
  }

  /** One part is stored in S3 with this ETag. */
  async recordStoredPart(id: string, part: StoredPart): Promise<void> {
    await this.repo.upsertParts(id, [{ ...part, status: 'stored' }]);
  }

  /** The MD5s a direct upload's client signs its parts with (the owner's API shows them beside S3's ETags). */
  async recordPartMd5s(
    id: string,
    parts: ReadonlyArray<{ partNumber: number; md5?: string | undefined }>,
  ): Promise<void> {
    await this.repo.recordPartMd5s(
      id,
      parts.flatMap((part) => (part.md5 ? [{ partNumber: part.partNumber, md5: part.md5 }] : [])),
    );
  }

  /** Parts planned for a direct upload, before any bytes arrive. */
  async recordPlannedParts(id: string, parts: ReadonlyArray<{ partNumber: number; size: number }>): Promise<void> {
    await this.repo.upsertParts(
      id,
      parts.map((part) => ({ ...part, etag: null, status: 'pending' as const })),
    );
  }

  /** What S3 lists for the upload, merged into the part rows (a resuming client asks this). */
  async mergeStoredParts(id: string, stored: readonly StoredPart[]): Promise<void> {
    if (stored.length === 0) return;
    await this.repo.upsertParts(
      id,
      stored.map((part) => ({ ...part, status: 'stored' as const })),
    );
    await this.recordProgress(id, sumOfSizes(stored));
  }

  /**
   * Decides whether the parts S3 holds make up the whole upload, before anything is assembled.
   * `expected` are the parts the uploader reported (direct: the client's ETags) merged with what we recorded
   * (tus: the part rows written as each part was stored; direct: the planned sizes).
   * Throws 409 naming every missing or wrong part; otherwise returns the parts in order (to assemble).
   */
  async verifyParts(
    upload: FileUpload,
    stored: readonly StoredPart[],
    reported: readonly ExpectedPart[] = [],
  ): Promise<StoredPart[]> {
    const rows = await this.repo.listParts(upload.id);
    // With a plan (every direct upload of known size, every tus upload on S3), parts 1..N of planned sizes.
    const planned = upload.totalSize !== null && upload.partSize !== null;
    const expected = new Map<number, ExpectedPart>();
    for (const row of rows) {
      if (planned || row.status === 'stored') {
        expected.set(row.partNumber, { partNumber: row.partNumber, size: row.size, etag: row.etag });
      }
    }
    for (const part of reported) {
      const known = expected.get(part.partNumber);
      if (known === undefined && planned) {
        // Reported but never planned: flagged as unexpected by the check below.
        expected.set(part.partNumber, { partNumber: part.partNumber, etag: part.etag });
      } else {
        expected.set(part.partNumber, { ...known, partNumber: part.partNumber, etag: part.etag ?? known?.etag });
      }
    }
    const report = checkParts({
      totalSize: upload.totalSize,
      stored,
      expected: [...expected.values()],
      partCount: planned ? partCount(upload.totalSize ?? 0, upload.partSize ?? 1) : undefined,
    });
    if (report.problems.length > 0) {
      throw partsMismatch(`cannot complete the upload: ${describePartProblems(report.problems)}`, {
        problems: report.problems,
      });
    }
    return report.parts;
  }

  /** Idempotent: completing a completed upload returns it unchanged. */
  async markCompleted(id: string, size: number, sha256?: string): Promise<FileUpload> {
    const now = this.now();
    const completed = await this.change(id, 'complete', {
      totalSize: size,
      bytesReceived: size,
      completedAt: now,
      lockedUntil: null,
      error: null,
      ...(sha256 === undefined ? {} : { sha256 }),
    });
    if (completed) return completed;
    const current = await this.repo.findUpload(id);
    if (current && isCompleted(current.status)) return current;
    throw conflict(`the upload is ${current?.status ?? 'missing'} and cannot be completed`);
  }

  /**
   * The SHA-256 of a tus upload whose every byte is stored, from the running digest recorded with its offset
   * (undefined when none was kept), or as `computed` by reading the bytes (a concatenated upload). If its client announced one (Upload-Metadata `sha256`) and they differ, the
   * upload is rejected for good (460): it is never presented as completed, and the API says why.
   */
  async verifyDigest(upload: FileUpload, computed?: string): Promise<string | undefined> {
    const sha256 = computed ?? (await RunningDigest.hexOf(upload.hashState, upload.storedOffset ?? 0));
    const announced = upload.metadata?.sha256?.toLowerCase();
    if (announced && sha256 && announced !== sha256) {
      const reason = `sha256 mismatch: the stored bytes have ${sha256}, the client announced ${announced}`;
      await this.change(upload.id, 'reject', { error: reason, lockedUntil: null });
      throw digestMismatch(reason);
    }
    return sha256;
  }

  /**
   * A completed upload cannot be aborted; aborting an aborted one is a no-op. `reason`: why the server aborted it
   * (kept as its error); without one, the owner did.
   */
  async markAborted(id: string, reason?: string): Promise<void> {
    const aborted = await this.change(id, 'abort', {
      lockedUntil: null,
      ...(reason === undefined ? {} : { error: reason }),
    });
    if (aborted) return;
    const current = await this.repo.findUpload(id);
    if (!current) throw notFound();
    if (wasTerminated(current.status)) return;
    throw conflict(`the upload is ${current.status} and cannot be aborted`);
  }

  /** The last attempt failed (the reason is kept); the upload stays resumable and goes back to `uploading` on progress. */
  async markFailed(id: string, error: string): Promise<void> {
    await this.change(id, 'fail', { error, lockedUntil: null });
  }

  /**
   * Claims the upload for a completion or an abort that calls S3: only one claim holds at a time, so two
   * concurrent completes cannot both call CompleteMultipartUpload. Returns undefined if someone else holds it.
   */
  async claim(id: string, forMs: number): Promise<FileUpload | undefined> {
    return this.repo.lockForCompletion(id, new Date(this.now().getTime() + forMs));
  }

  async release(id: string): Promise<void> {
    await this.repo.unlockCompletion(id);
  }

  async countStoredParts(id: string): Promise<number> {
    return this.repo.countStoredParts(id);
  }

  async listParts(id: string) {
    return this.repo.listParts(id);
  }

  async list(userId: string, options: Parameters<UploadRepository['listOwnedUploads']>[1]) {
    return this.repo.listOwnedUploads(userId, options);
  }
}
