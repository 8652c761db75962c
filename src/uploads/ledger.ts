/**
 * The parts ledger: what storage holds of each upload. The tus stored offset (the one way it moves is a guarded
 * advance from the offset the writer started at), the part rows (planned, stored, their ETags, MD5s and digest
 * states), the S3 UploadId and a deferred length, each set once; and the check that the parts S3 lists make up the
 * whole upload before anything is assembled.
 */
import { badRequest, conflict, FreightError, gone, offsetMismatch, partsMismatch } from '../errors.js';
import type { StoredAdvance } from '../db/repository.js';
import type { WholeCompletion } from '../db/whole-uploads.js';
import type { FileUpload } from '../db/schema.js';
import type { StoredPart } from '../storage/multipart.js';
import { hasEnded, isCompleted, isOpen } from '../lifecycle.js';
import { checkParts, describePartProblems, sumOfSizes, type ExpectedPart } from './parts.js';
import { partCount } from './planner.js';
import type { UploadContext } from './context.js';

export class PartsLedger {
  constructor(private readonly context: UploadContext) {}

  /**
   * When an unfinished upload expires, as a request that stored up to `offset` leaves it (Upload-Expires): bytes
   * stored were progress, which moved its expiry to UPLOAD_EXPIRY from then (advanceStoredOffset); none, no change.
   */
  expiresAtAfter(upload: FileUpload, offset: number): Date | null {
    return offset !== upload.storedOffset ? this.context.idleExpiry() : upload.expiresAt;
  }

  /** The S3 multipart upload of an upload that had none: false if another request recorded one first. */
  async attachS3Upload(id: string, s3UploadId: string): Promise<boolean> {
    return this.context.repo.setOnce(id, { s3UploadId });
  }

  /** tus creation-defer-length: the length arrives with a later PATCH, once. */
  async declareLength(id: string, totalSize: number): Promise<void> {
    const upload = await this.context.getUpload(id);
    // A length smaller than the bytes already stored is a bad request (the PATCH route checks it before it asks;
    // the DataStore contract may ask directly); a second declaration is a conflict.
    if (upload.storedOffset !== null && totalSize < upload.storedOffset) {
      throw badRequest(`Upload-Length ${totalSize} is smaller than the ${upload.storedOffset} bytes already stored`);
    }
    if (!(await this.context.repo.setOnce(id, { totalSize }))) {
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
    if (await this.context.repo.advanceStoredOffset(id, { ...advance, expiresAt: this.context.idleExpiry() })) {
      if (advance.to > advance.from) {
        this.context.options.metrics?.tusBytesReceived.inc(advance.to - advance.from);
        await this.context.reportProgress(id);
      }
      return;
    }
    const current = await this.context.repo.findUpload(id);
    // A request that lost a race to the request that completed the upload: 409 (its client asks for the offset
    // and finds the upload done); only a terminated, expired or lost upload is gone.
    if (current && hasEnded(current.status)) throw gone(`the upload is ${current.status}`);
    throw offsetMismatch(
      `the upload moved on to offset ${current?.storedOffset} while this request wrote from ${advance.from}; ask for its offset (HEAD) and resume`,
    );
  }

  /** Staged bytes were lost in storage: the upload goes back to the start of part `partNumber` (`to`), the reason kept. */
  async rewindStoredOffset(id: string, from: number, partNumber: number, to: number, reason: string): Promise<void> {
    if (await this.context.repo.rewindStoredOffset(id, from, partNumber, to)) {
      await this.context.change(id, 'fail', { error: reason });
    }
  }

  /**
   * A part of a direct upload was signed: its client is about to send it, so the upload lives at least
   * UPLOAD_EXPIRY from now, and at least as long as the URL (`validForMs`): expiry never spoils a URL it handed out.
   */
  async recordSignedParts(id: string, validForMs: number): Promise<void> {
    await this.context.repo.retention.extendExpiry(
      id,
      new Date(this.context.now().getTime() + Math.max(this.context.options.expiryMs, validForMs)),
    );
  }

  /**
   * A final upload assembled by S3 from its partial uploads: its parts recorded and its offset at its length (from
   * 0). Idempotent: an offset already at the length (an earlier attempt recorded it, then failed) is left as it is.
   */
  async recordAssembled(id: string, parts: readonly StoredPart[], length: number): Promise<void> {
    await this.context.repo.parts.upsertParts(
      id,
      parts.map((part) => ({ ...part, status: 'stored' as const })),
    );
    const assembled = { from: 0, to: length, staging: null, hashState: null, expiresAt: this.context.idleExpiry() };
    if (await this.context.repo.advanceStoredOffset(id, assembled)) return;
    const current = await this.context.repo.findUpload(id);
    if (current?.storedOffset === length && (isCompleted(current.status) || isOpen(current.status))) return;
    throw conflict(`the final upload is ${current?.status ?? 'missing'} at offset ${current?.storedOffset}`);
  }

  /**
   * The S3 multipart upload recorded for an upload is gone from storage and nothing was made of it (a final upload
   * whose assembly starts again): forgotten, so that a new one can be recorded. The caller holds the upload's lock.
   */
  async forgetS3Upload(id: string, s3UploadId: string): Promise<void> {
    await this.context.repo.finals.forgetS3Upload(id, s3UploadId);
  }

  /** S3 holds `bytes` bytes of a direct upload: more than recorded is progress, which moves its expiry. */
  async recordProgress(id: string, bytes: number): Promise<void> {
    if (bytes <= 0) return;
    await this.context.repo.recordProgress(id, bytes, this.context.idleExpiry());
    await this.context.reportProgress(id);
  }

  /** One part is stored in S3 with this ETag. */
  async recordStoredPart(id: string, part: StoredPart): Promise<void> {
    await this.context.repo.parts.upsertParts(id, [{ ...part, status: 'stored' }]);
  }

  /** The MD5s a direct upload's client signs its parts with (the owner's API shows them beside S3's ETags). */
  async recordPartMd5s(
    id: string,
    parts: ReadonlyArray<{ partNumber: number; md5?: string | undefined }>,
  ): Promise<void> {
    await this.context.repo.parts.recordPartMd5s(
      id,
      parts.flatMap((part) => (part.md5 ? [{ partNumber: part.partNumber, md5: part.md5 }] : [])),
    );
  }

  /** Parts planned for a direct upload, before any bytes arrive. */
  async recordPlannedParts(id: string, parts: ReadonlyArray<{ partNumber: number; size: number }>): Promise<void> {
    await this.context.repo.parts.upsertParts(
      id,
      parts.map((part) => ({ ...part, etag: null, status: 'pending' as const })),
    );
  }

  /** What S3 lists for the upload, merged into the part rows (a resuming client asks this). */
  async mergeStoredParts(id: string, stored: readonly StoredPart[]): Promise<void> {
    if (stored.length === 0) return;
    await this.context.repo.parts.upsertParts(
      id,
      stored.map((part) => ({ ...part, status: 'stored' as const })),
    );
    await this.recordProgress(id, sumOfSizes(stored));
  }

  /** The parts S3 lists checked against the plan and the recorded ETags; a mismatch fails the upload (409). */
  async verifyStoredParts(upload: FileUpload, stored: readonly StoredPart[]): Promise<StoredPart[]> {
    try {
      return await this.verifyParts(upload, stored);
    } catch (error) {
      if (error instanceof FreightError)
        await this.context.change(upload.id, 'fail', { error: error.message, lockedUntil: null });
      throw error;
    }
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
    const rows = await this.context.repo.parts.listParts(upload.id);
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

  async countStoredParts(id: string): Promise<number> {
    return this.context.repo.parts.countStoredParts(id);
  }

  async listParts(id: string) {
    return this.context.repo.parts.listParts(id);
  }

  /**
   * Whether completing `record` asks the pre-finish check first (WEBHOOK_PRE_FINISH; a partial upload of
   * concatenation is never asked): such a completion goes through complete(), not completeWhole().
   */
  asksBeforeCompleting(record: FileUpload): boolean {
    return this.context.options.preFinish !== undefined && record.concat !== 'partial';
  }

  /**
   * A tus upload whose every byte one request brought, stored by S3 as one object (src/tus/s3/whole.ts): its offset,
   * its one part and its completion recorded in one statement, once its digest was verified. Only from offset 0:
   * if another request moved the upload meanwhile it is 409 (the client asks for the offset); if it ended
   * meanwhile, undefined (the caller removes the object and answers 410).
   */
  async completeWhole(
    upload: FileUpload,
    whole: Omit<WholeCompletion, 'completedAt'>,
  ): Promise<FileUpload | undefined> {
    const { repo, options } = this.context;
    if (await repo.whole.completeWhole(upload.id, { ...whole, completedAt: this.context.now() })) {
      options.metrics?.tusBytesReceived.inc(whole.size);
      return this.context.counted('completed', { ...upload, status: 'completed' });
    }
    const current = await repo.findUpload(upload.id);
    if (current && hasEnded(current.status)) return undefined;
    throw offsetMismatch(
      `the upload moved on to offset ${current?.storedOffset} while this request wrote from 0; ask for its offset (HEAD) and resume`,
    );
  }
}
