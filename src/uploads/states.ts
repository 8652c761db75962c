/**
 * Every change of an upload's status, made through the lifecycle table (src/lifecycle.ts): creation within
 * the per-user bounds, completion, failure, abort and termination, loss, rejection of a digest, expiry by idleness,
 * the completion claim, and the pruning of ended rows.
 *
 * Expiry measures idleness, not age: expires_at is UPLOAD_EXPIRY after the upload's last progress (its creation,
 * each stored byte of tus, each part signed or found stored of direct), and an upload a writer holds (its tus
 * lock) or a request is completing (its claim) is never expired, however long that takes.
 */
import {
  badRequest,
  conflict,
  digestMismatch,
  type FreightError,
  gone,
  notFound,
  tooManyUploads,
  tooManyUploadsKept,
  webhookBadAnswer,
} from '../errors.js';
import { violatesUnique } from '../db/availability.js';
import type { FileUpload, NewFileUpload, UploadProtocol } from '../db/schema.js';
import { RunningDigest } from './digest.js';
import { hasEnded, isAssembled, isCompleted, isOpen, wasTerminated } from '../lifecycle.js';
import { metadataProblem, type MetadataLimits } from './metadata.js';
import { ASK_LEASE_MARGIN_MS, decide, type ApprovalRecords } from './approval.js';
import type { NewUpload, UploadContext } from './context.js';

const UNBOUNDED_METADATA: MetadataLimits = {
  maxSize: Number.POSITIVE_INFINITY,
  maxValueSize: Number.POSITIVE_INFINITY,
};

/** Expiry candidates looked at per statement (each takes an advisory lock until its statement commits). */
const EXPIRY_BATCH = 100;

/**
 * An insert of an upload keyed `storageKey`. A key another upload has (a row of any status: until an ended upload's
 * row is pruned, the janitor may still be removing its storage by that key) is the pre-create check's mistake:
 * 502, nothing recorded. The unique index decides, so two creations racing for one key cannot both have it.
 */
async function keyed<T>(storageKey: string, insert: () => Promise<T>): Promise<T> {
  try {
    return await insert();
  } catch (error) {
    if (!violatesUnique(error, 'file_uploads_storage_key_unique')) throw error;
    const shown = JSON.stringify(storageKey.length > 80 ? `${storageKey.slice(0, 80)}…` : storageKey);
    throw webhookBadAnswer(`the key ${shown}, which another upload has`);
  }
}

/**
 * How a creation's row is inserted within the user's limits (0: none), when not as any upload's (a final upload of
 * tus concatenation: finals.ts); it may throw to refuse the row.
 */
export type InsertWithinLimits = (
  row: NewFileUpload,
  limits: { limit: number; now: Date; keptLimit: number },
) => Promise<{ created: FileUpload } | { open: number } | { kept: number }>;

export class UploadStates implements ApprovalRecords {
  constructor(private readonly context: UploadContext) {}

  /**
   * Records a new upload (both paths create through here, before storage is asked for anything), once the
   * pre-create check (if any) allowed it. Beyond the user's limit of open uploads it is 429 and nothing is
   * recorded; an upload stops counting once it is completed, aborted, expired or lost.
   */
  async create(input: NewUpload, insertWithin?: InsertWithinLimits): Promise<FileUpload> {
    const problem = metadataProblem(input.metadata, this.context.options.metadataLimits ?? UNBOUNDED_METADATA);
    if (problem) throw badRequest(problem);
    const admitted = await this.context.options.admit?.(input);
    const now = this.context.now();
    const storageKey = (this.context.options.keyPrefix ?? '') + (admitted?.key ?? input.storageKey);
    const row = {
      ...input,
      storageKey,
      objectShape: admitted && Object.keys(admitted.shape).length > 0 ? admitted.shape : null,
      status: 'pending' as const,
      createdAt: now,
      updatedAt: now,
      expiresAt: new Date(now.getTime() + this.context.options.expiryMs),
    };
    const limit = this.context.options.maxOpenUploadsPerUser ?? 0;
    const keptLimit = this.context.options.maxUploadsPerUser ?? 0;
    let created: FileUpload;
    const { repo } = this.context;
    if (!insertWithin && limit === 0 && keptLimit === 0)
      created = await keyed(storageKey, () => repo.insertUpload(row));
    else {
      const result = await keyed(storageKey, () =>
        insertWithin
          ? insertWithin(row, { limit, now, keptLimit })
          : repo.insertUploadWithinLimit(row, limit, now, keptLimit),
      );
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
    this.context.options.metrics?.countUpload('created', created.protocol);
    return created;
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
      const upload = await this.context.getUpload(id);
      if (isAssembled(upload.status)) {
        if (!options.completed) throw conflict(`the upload is ${upload.status} and cannot be deleted`);
        const terminated = await this.context.change(id, 'terminate', { lockedUntil: null });
        if (terminated) return terminated;
        continue;
      }
      if (!isOpen(upload.status)) return upload;
      const expired = upload.expiresAt !== null && upload.expiresAt <= this.context.now();
      const ended = await this.context.change(id, expired ? 'expire' : 'abort', { lockedUntil: null });
      if (ended) return ended;
    }
    throw conflict('the upload changed while it was being deleted; retry');
  }

  /**
   * Every byte of the upload is stored and verified, and its object assembled (`record`: its row as the caller
   * read it): it is completed, or, with WEBHOOK_PRE_FINISH, first recorded `awaiting_approval` and the receiver
   * asked (approval.ts): the upload is returned completed or still awaiting, or ERR_UPLOAD_REJECTED is thrown
   * once `removeObject` removed its object. A partial upload (tus concatenation) is not asked: it is a piece of
   * a file, not one; the final upload made of it is asked. Idempotent, like markCompleted: an upload already
   * assembled is returned as it is.
   */
  async complete(
    record: FileUpload,
    size: number,
    sha256: string | undefined,
    removeObject: () => Promise<void>,
  ): Promise<FileUpload> {
    const check = this.context.options.preFinish;
    if (!check || record.concat === 'partial') return this.markCompleted(record.id, size, sha256);
    const now = this.context.now();
    this.context.progress.forget(record.id);
    const awaiting = await this.context.change(record.id, 'awaitApproval', {
      totalSize: size,
      bytesReceived: size,
      error: null,
      // It never expires: it is no longer open, whatever the receiver takes. Its updated_at says since when it
      // waits (the backoff between asks grows with it); locked_until is this ask's lease.
      expiresAt: null,
      updatedAt: now,
      lockedUntil: new Date(now.getTime() + check.timeoutMs + ASK_LEASE_MARGIN_MS),
      ...(sha256 === undefined ? {} : { sha256 }),
    });
    if (!awaiting) {
      const current = await this.context.repo.findUpload(record.id);
      if (current && isAssembled(current.status)) return current;
      throw conflict(`the upload is ${current?.status ?? 'missing'} and cannot be completed`);
    }
    return decide({ records: this, check, now: () => this.context.now() }, awaiting, removeObject);
  }

  /** Uploads awaiting approval whose next ask is due, leased to the caller for one ask each (approval-loop.ts). */
  async claimAwaitingApproval(limit: number): Promise<FileUpload[]> {
    const check = this.context.options.preFinish;
    if (!check) return [];
    const now = this.context.now();
    return this.context.repo.approvals.claimAwaitingApproval(
      now,
      new Date(now.getTime() + check.timeoutMs + ASK_LEASE_MARGIN_MS),
      limit,
    );
  }

  /** Asks again about an upload claimed by claimAwaitingApproval (a refusal throws, as complete's does). */
  async askAgain(upload: FileUpload, removeObject: () => Promise<void>): Promise<FileUpload> {
    const check = this.context.options.preFinish;
    if (!check) return upload;
    return decide({ records: this, check, now: () => this.context.now() }, upload, removeObject);
  }

  async approve(id: string): Promise<FileUpload | undefined> {
    return this.context.change(id, 'approve', { completedAt: this.context.now(), lockedUntil: null, error: null });
  }

  async refuse(id: string, reason: string): Promise<FileUpload | undefined> {
    return this.context.change(id, 'refuse', { error: reason, lockedUntil: null });
  }

  async askAgainAt(id: string, at: Date, reason: string): Promise<boolean> {
    return this.context.repo.approvals.askAgainAt(id, at, reason);
  }

  async findForStorage(id: string): Promise<FileUpload | undefined> {
    return this.context.repo.findUpload(id);
  }

  /** Idempotent: completing a completed upload returns it unchanged. */
  async markCompleted(id: string, size: number, sha256?: string): Promise<FileUpload> {
    this.context.progress.forget(id);
    const now = this.context.now();
    const completed = await this.context.change(id, 'complete', {
      totalSize: size,
      bytesReceived: size,
      completedAt: now,
      lockedUntil: null,
      error: null,
      ...(sha256 === undefined ? {} : { sha256 }),
    });
    if (completed) return completed;
    const current = await this.context.repo.findUpload(id);
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
      await this.context.change(upload.id, 'reject', { error: reason, lockedUntil: null });
      throw digestMismatch(reason);
    }
    return sha256;
  }

  /**
   * A completed upload cannot be aborted; aborting an aborted one is a no-op. `reason`: why the server aborted it
   * (kept as its error); without one, the owner did.
   */
  async markAborted(id: string, reason?: string): Promise<void> {
    const aborted = await this.context.change(id, 'abort', {
      lockedUntil: null,
      ...(reason === undefined ? {} : { error: reason }),
    });
    if (aborted) return;
    const current = await this.context.repo.findUpload(id);
    if (!current) throw notFound();
    if (wasTerminated(current.status)) return;
    throw conflict(`the upload is ${current.status} and cannot be aborted`);
  }

  /** The last attempt failed (the reason is kept); the upload stays resumable and goes back to `uploading` on progress. */
  async markFailed(id: string, error: string): Promise<void> {
    await this.context.change(id, 'fail', { error, lockedUntil: null });
  }

  /**
   * Storage no longer holds the upload's bytes: it can never be resumed or completed. Its offset goes back to 0
   * (it must not claim bytes that are gone), and the answer is 410 with the reason.
   */
  async markLost(id: string, reason: string): Promise<FreightError> {
    await this.context.change(id, 'lose', {
      error: reason,
      storedOffset: 0,
      bytesReceived: 0,
      staging: null,
      lockedUntil: null,
    });
    return gone(`the upload cannot be resumed: ${reason}`);
  }

  /**
   * An upload whose multipart upload S3 no longer has: completed if the object is there at its full length
   * (an earlier assembly whose answer was lost), otherwise its bytes are lost: failed, and gone (410).
   */
  async recognizeObject(
    upload: FileUpload,
    objectSize: number | undefined,
    removeObject: () => Promise<void>,
    sha256?: string,
  ): Promise<void> {
    if (upload.totalSize !== null && objectSize === upload.totalSize) {
      await this.complete(upload, upload.totalSize, sha256, removeObject);
      return;
    }
    throw await this.markLost(upload.id, 'the multipart upload no longer exists in storage');
  }

  /**
   * Claims the upload for a completion or an abort that calls S3: only one claim holds at a time, so two
   * concurrent completes cannot both call CompleteMultipartUpload. Returns undefined if someone else holds it.
   */
  async claim(id: string, forMs: number): Promise<FileUpload | undefined> {
    return this.context.repo.lockForCompletion(id, new Date(this.context.now().getTime() + forMs));
  }

  async release(id: string): Promise<void> {
    await this.context.repo.unlockCompletion(id);
  }

  /**
   * Those of `ids` still idle past their expiry, marked expired; returns them. Not one whose tus lock is held,
   * here (in memory) or by any session (in SQL), nor one a request is completing.
   */
  async expireIdle(ids: readonly string[]): Promise<FileUpload[]> {
    if (ids.length === 0) return [];
    const now = this.context.now();
    const expire = (held: ReadonlySet<string>) =>
      this.context.repo.retention.expireIdleUploads(
        ids.filter((id) => !held.has(id)),
        now,
      );
    const expired = await (this.context.options.locks
      ? this.context.options.locks.excluding(expire)
      : expire(new Set()));
    for (const upload of expired) this.context.counted('expired', upload);
    return expired;
  }

  /** Those of `ids` a writer holds now: their tus lock is held, here (in memory) or by any session (in SQL). */
  async beingWritten(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const inSql = await this.context.repo.retention.heldByWriters(ids);
    const here = this.context.options.locks
      ? await this.context.options.locks.excluding(async (held) => ids.filter((id) => held.has(id)))
      : [];
    return new Set([...inSql, ...here]);
  }

  /**
   * Open uploads of `protocol` idle past their expiry, now marked expired (the caller removes their storage); those
   * a writer holds or a request is completing are left alone.
   */
  async expireOpenUploads(protocol: UploadProtocol): Promise<FileUpload[]> {
    const now = this.context.now();
    const expired: FileUpload[] = [];
    for (let after: string | undefined; ; ) {
      const batch = await this.context.repo.retention.listExpiredOpenUploads(protocol, now, {
        limit: EXPIRY_BATCH,
        after,
      });
      expired.push(...(await this.expireIdle(batch.map((upload) => upload.id))));
      if (batch.length < EXPIRY_BATCH) return expired;
      after = batch.at(-1)?.id;
    }
  }

  /** The uploads expireOpenUploads would expire now (a dry run changes nothing). */
  async expiredOpenUploads(protocol: UploadProtocol): Promise<FileUpload[]> {
    return this.context.repo.retention.listExpiredOpenUploads(protocol, this.context.now());
  }

  /**
   * The upload if it ended (aborted, expired, lost, rejected) while a request was completing it: that request's
   * object must not stay (nothing completed is ever expired). undefined while it is open or completed.
   */
  async endedMeanwhile(id: string): Promise<FileUpload | undefined> {
    const current = await this.context.repo.findUpload(id);
    return current && hasEnded(current.status) ? current : undefined;
  }

  /** Uploads that ended (lifecycle ENDED) before `before`, oldest first: the janitor prunes them. */
  async prunableUploads(before: Date, limit: number): Promise<FileUpload[]> {
    return this.context.repo.retention.listPrunableUploads(before, limit);
  }

  async countPrunableUploads(before: Date): Promise<number> {
    return this.context.repo.retention.countPrunableUploads(before);
  }

  /**
   * Deletes the rows of those of `ids` that still ended before `before` (a row that changed meanwhile stays), with
   * their parts and delivered (or given up) webhook events; returns how many. Completed uploads are never pruned:
   * they are their owners' files.
   */
  async pruneEndedUploads(ids: readonly string[], before: Date): Promise<number> {
    return this.context.repo.retention.deleteEndedUploads(ids, before);
  }
}
