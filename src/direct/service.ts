/**
 * Direct-to-S3 multipart uploads: the server plans, signs, records and verifies; the bytes go from the client
 * to S3. Upload state goes through the same upload-state service as tus, so "completed" means the same thing.
 */
import { randomUUID } from 'node:crypto';
import { S3_LIMITS } from '../config/index.js';
import type { FileUpload } from '../db/schema.js';
import { FreightError, badRequest, conflict, failureReason, gone, payloadTooLarge } from '../errors.js';
import type { MultipartStorage } from '../storage/multipart.js';
import type { StoredPart } from '../storage/multipart.js';
import { sumOfSizes } from '../uploads/parts.js';
import { partCount, partSizeProblem, planPartSize, plannedPartSize } from '../uploads/planner.js';
import type { UploadService } from '../uploads/service.js';
import type { PartPresigner, SignedPart } from './presigner.js';
import { hasEnded, isAssembled, isOpen, wasTerminated } from '../lifecycle.js';

/** Parts signed with the creation answer; the client asks for the rest as it goes. */
export const FIRST_BATCH = 20;
/** The most parts one request may have signed (create, sign, Companion's batch). */
export const MAX_SIGN_BATCH = 1000;
/** How long a complete or abort may hold the upload before another request may take over. */
const CLAIM_MS = 5 * 60_000;

export interface CreateInput {
  filename: string;
  /** undefined: unknown until completion (Uppy/Companion-style uploads). */
  size: number | undefined;
  mimeType: string;
  partSize?: number | undefined;
  metadata?: Record<string, string | null> | undefined;
  /** Parts to sign right away, with their MD5s; default: the first FIRST_BATCH parts without MD5. */
  parts?: ReadonlyArray<{ partNumber: number; md5?: string | undefined }> | undefined;
}

export interface CreatedUpload {
  upload: FileUpload;
  partCount: number | null;
  parts: SignedPart[];
}

export interface CompletedUpload {
  id: string;
  key: string;
  location: string;
  size: number;
  /** `awaiting_approval`: assembled, but the pre-finish check has not said yes yet (202). */
  status: 'completed' | 'awaiting_approval';
}

/** An upload's parts: all `partSize` bytes but the last. */
interface PartPlan {
  size: number;
  partSize: number;
  count: number;
}

/** The parts signed with the creation answer: those the client listed, else the first FIRST_BATCH. */
function firstParts(
  input: CreateInput,
  plan: PartPlan | undefined,
): ReadonlyArray<{ partNumber: number; md5?: string | undefined }> {
  return (
    input.parts ??
    Array.from({ length: Math.min(plan?.count ?? FIRST_BATCH, FIRST_BATCH) }, (_, i) => ({ partNumber: i + 1 }))
  );
}

export class DirectUploads {
  constructor(
    private readonly uploads: UploadService,
    private readonly storage: MultipartStorage,
    private readonly presigner: PartPresigner,
    private readonly options: { preferredPartSize: number; maxParts: number; maxUploadSize: number },
  ) {}

  get bucket(): string {
    return this.storage.bucket;
  }

  /** Plans the upload, records it, opens its S3 multipart upload and signs a first batch of parts. */
  async create(userId: string, input: CreateInput): Promise<CreatedUpload> {
    const plan = this.plan(input.size, input.partSize);
    const recorded = await this.record(userId, input, plan);
    const upload = await this.openMultipartUpload(recorded, input.filename);
    return { upload, partCount: plan?.count ?? null, parts: await this.signFor(upload, firstParts(input, plan)) };
  }

  /**
   * How an upload of `size` bytes is cut into parts: the client's part size or the planner's, checked against
   * S3's limits and S3_MAX_PARTS (400); over MAX_UPLOAD_SIZE is 413. No plan while the size is unknown.
   */
  private plan(size: number | undefined, requestedPartSize: number | undefined): PartPlan | undefined {
    if (size === undefined) return undefined;
    const { maxUploadSize, preferredPartSize, maxParts } = this.options;
    if (size > maxUploadSize)
      throw payloadTooLarge(`size ${size} exceeds this server's maximum of ${maxUploadSize} bytes`);
    const partSize = requestedPartSize ?? planPartSize(size, preferredPartSize, maxParts);
    const problem = partSizeProblem(size, partSize, maxParts);
    if (problem) throw badRequest(problem);
    return { size, partSize, count: partCount(size, partSize) };
  }

  /** The upload's row (429 beyond the user's open uploads) and a row per planned part. */
  private async record(userId: string, input: CreateInput, plan: PartPlan | undefined): Promise<FileUpload> {
    const id = randomUUID();
    const upload = await this.uploads.states.create({
      id,
      userId,
      protocol: 'direct',
      filename: input.filename,
      mimeType: input.mimeType,
      totalSize: plan?.size ?? null,
      storageKey: id,
      partSize: plan?.partSize ?? null,
      metadata: input.metadata ?? null,
    });
    if (plan) {
      await this.uploads.ledger.recordPlannedParts(
        id,
        Array.from({ length: plan.count }, (_, i) => ({
          partNumber: i + 1,
          size: plannedPartSize(plan.size, plan.partSize, i + 1),
        })),
      );
    }
    return upload;
  }

  /** The upload's S3 multipart upload, opened and recorded; if S3 fails, the upload is marked failed with the reason. */
  private async openMultipartUpload(upload: FileUpload, filename: string): Promise<FileUpload> {
    let s3UploadId: string;
    try {
      // The client's mimeType is recorded, not given to S3: the object is bytes to download, unless the pre-create
      // hook shaped it (see object-headers.ts).
      s3UploadId = await this.storage.create(upload.storageKey, { filename, shape: upload.objectShape });
    } catch (error) {
      await this.uploads.states.markFailed(upload.id, failureReason(error));
      throw error;
    }
    await this.uploads.ledger.attachS3Upload(upload.id, s3UploadId);
    return { ...upload, s3UploadId };
  }

  /** Presigned URLs for the caller's open upload. */
  async sign(
    userId: string,
    id: string,
    parts: ReadonlyArray<{ partNumber: number; md5?: string | undefined }>,
  ): Promise<SignedPart[]> {
    const upload = await this.open(userId, id);
    return this.signFor(upload, parts);
  }

  private async signFor(
    upload: FileUpload,
    parts: ReadonlyArray<{ partNumber: number; md5?: string | undefined }>,
  ): Promise<SignedPart[]> {
    const seen = new Set<number>();
    const count = this.partCountOf(upload);
    for (const { partNumber } of parts) {
      if (seen.has(partNumber)) throw badRequest(`part ${partNumber} is listed twice`);
      seen.add(partNumber);
      if (partNumber < 1 || partNumber > (count ?? S3_LIMITS.maxParts)) {
        throw badRequest(`part ${partNumber} is outside this upload's parts 1..${count ?? S3_LIMITS.maxParts}`);
      }
    }
    await this.uploads.ledger.recordPartMd5s(upload.id, parts);
    // Signing counts as progress: its client is about to send the parts (see recordSignedParts).
    if (parts.length > 0)
      await this.uploads.ledger.recordSignedParts(upload.id, this.presigner.expiresInSeconds * 1000);
    return this.presigner.sign(
      upload.storageKey,
      this.s3UploadIdOf(upload),
      parts.map((part) => ({
        partNumber: part.partNumber,
        // Bind the exact length when the plan knows it (not for uploads of unknown size).
        size:
          count !== null && upload.totalSize !== null && upload.partSize !== null
            ? plannedPartSize(upload.totalSize, upload.partSize, part.partNumber)
            : undefined,
        md5: part.md5,
      })),
    );
  }

  /** What S3 holds (a resuming client asks this), merged into the part rows. */
  async listParts(userId: string, id: string): Promise<{ upload: FileUpload; parts: StoredPart[] }> {
    const upload = await this.uploads.access.getOwnedLive(userId, id, 'direct');
    if (isAssembled(upload.status)) {
      const rows = await this.uploads.ledger.listParts(id);
      return {
        upload,
        parts: rows.map((row) => ({ partNumber: row.partNumber, size: row.size, etag: row.etag ?? '' })),
      };
    }
    const stored = await this.syncParts(upload);
    if (!stored) throw await this.lost(upload);
    return { upload, parts: stored };
  }

  /** Lists what S3 holds and records it (the planned parts among it); undefined when the upload is gone from S3. */
  private async syncParts(upload: FileUpload): Promise<StoredPart[] | undefined> {
    const stored = await this.storage.listParts(upload.storageKey, this.s3UploadIdOf(upload));
    if (!stored) return undefined;
    const count = this.partCountOf(upload);
    await this.uploads.ledger.mergeStoredParts(
      upload.id,
      count === null ? stored : stored.filter((part) => part.partNumber <= count),
    );
    return stored;
  }

  /**
   * Completes the upload once S3's parts are exactly the planned ones with the ETags the client saw.
   * Idempotent; of concurrent completes only one calls S3, the others answer 409 until it is done.
   */
  async complete(
    userId: string,
    id: string,
    reported: ReadonlyArray<{ partNumber: number; etag: string }>,
  ): Promise<CompletedUpload> {
    const upload = await this.uploads.access.getOwnedLive(userId, id, 'direct');
    if (isAssembled(upload.status)) return this.completedAnswer(upload);
    const claimed = await this.uploads.states.claim(id, CLAIM_MS);
    if (!claimed) {
      const current = await this.uploads.access.getOwned(userId, id, 'direct');
      if (isAssembled(current.status)) return this.completedAnswer(current);
      throw conflict('another request is completing or aborting this upload; retry shortly');
    }
    try {
      const key = claimed.storageKey;
      const stored = await this.syncParts(claimed);
      if (!stored) {
        // Completed by an earlier attempt whose answer was lost, or gone.
        const size = await this.storage.objectSize(key);
        if (size === undefined || (claimed.totalSize !== null && size !== claimed.totalSize))
          throw await this.lost(claimed);
        await this.tagShaped(claimed);
        return this.completedAnswer(await this.recordCompletion(claimed, size));
      }
      const parts = await this.uploads.ledger.verifyParts(claimed, stored, reported);
      const size = sumOfSizes(parts);
      if (size > this.options.maxUploadSize) throw await this.refuseOversize(claimed, size);
      await this.storage.complete(key, this.s3UploadIdOf(claimed), parts);
      await this.tagShaped(claimed);
      return this.completedAnswer(await this.recordCompletion(claimed, size));
    } catch (error) {
      await this.uploads.states.release(id);
      throw error;
    }
  }

  /**
   * The pre-create hook's tags, set again on the assembled object (S3 keeps those given at creation; Ceph RGW 16
   * drops them for multipart uploads). Before the completion is recorded: a failure is the client's retry.
   */
  private async tagShaped(upload: FileUpload): Promise<void> {
    const tags = upload.objectShape?.tags;
    if (tags && Object.keys(tags).length > 0) await this.storage.tag(upload.storageKey, tags);
  }

  /**
   * Records the completion of an upload whose object S3 now holds. Its claim keeps the janitor away while it
   * lasts (CLAIM_MS, past every S3 call's bound); should the upload have ended all the same (the claim ran out,
   * the process paused), nothing completed may outlive it: the object is removed and the answer is 410.
   */
  private async recordCompletion(upload: FileUpload, size: number): Promise<FileUpload> {
    try {
      return await this.uploads.states.complete(upload, size, undefined, () =>
        this.storage.removeObject(upload.storageKey),
      );
    } catch (error) {
      // Refused by the pre-finish check: its object is removed already, and the client is told why.
      if (error instanceof FreightError && error.code === 'ERR_UPLOAD_REJECTED') throw error;
      const ended = await this.uploads.states.endedMeanwhile(upload.id);
      if (!ended) throw error;
      await this.storage.removeObject(upload.storageKey);
      throw gone(`the upload was ${ended.status} while it was being completed; its object was removed`);
    }
  }

  /**
   * Aborts the multipart upload in S3, then ends the upload (aborted, or expired if its time is up). A completed
   * upload cannot be aborted; aborting twice is fine; an upload that expired or failed for good has what S3 still
   * holds of it removed (204 too).
   */
  async abort(userId: string, id: string): Promise<void> {
    const upload = await this.uploads.access.getOwned(userId, id, 'direct');
    if (wasTerminated(upload.status)) return;
    if (isAssembled(upload.status)) throw conflict(`the upload is ${upload.status} and cannot be aborted`);
    if (hasEnded(upload.status)) return this.discard(upload);
    const claimed = await this.uploads.states.claim(id, CLAIM_MS);
    if (!claimed) {
      // Ended meanwhile (the janitor expired it), or busy with a complete or another abort.
      const current = await this.uploads.access.getOwned(userId, id, 'direct');
      if (hasEnded(current.status)) return this.discard(current);
      throw conflict('another request is completing or aborting this upload; retry shortly');
    }
    try {
      await this.discard(claimed);
      await this.uploads.states.delete(id);
    } catch (error) {
      await this.uploads.states.release(id);
      throw error;
    }
  }

  /** What S3 holds of an upload that will not complete: its multipart upload, aborted (idempotent). */
  private async discard(upload: FileUpload): Promise<void> {
    if (upload.s3UploadId) await this.storage.abort(upload.storageKey, upload.s3UploadId);
  }

  /**
   * An upload of unknown size (Companion's) whose parts add up to more than MAX_UPLOAD_SIZE: S3 keeps every part
   * it was sent and has no way to drop one, so the upload could never complete. Rather than leave it (and its
   * bytes, which the bucket's owner pays for) open until it expires, its multipart upload is aborted now and the
   * upload is `aborted` with the reason kept; the client gets 413, and 410 from then on.
   */
  private async refuseOversize(upload: FileUpload, size: number) {
    const reason = `the parts hold ${size} bytes, more than this server's maximum of ${this.options.maxUploadSize} bytes; the upload was aborted`;
    await this.storage.abort(upload.storageKey, this.s3UploadIdOf(upload));
    await this.uploads.states.markAborted(upload.id, reason);
    return payloadTooLarge(reason);
  }

  /** Companion's routes name uploads by S3 UploadId and key. */
  async findByS3UploadId(userId: string, s3UploadId: string, key: string): Promise<FileUpload> {
    const upload = await this.uploads.access.findByS3UploadId(userId, s3UploadId, 'direct');
    if (upload.storageKey !== key) throw badRequest('key does not match the upload');
    return upload;
  }

  private async open(userId: string, id: string): Promise<FileUpload> {
    const upload = await this.uploads.access.getOwnedLive(userId, id, 'direct');
    if (!isOpen(upload.status)) throw conflict(`the upload is ${upload.status}`);
    return upload;
  }

  private partCountOf(upload: FileUpload): number | null {
    return upload.totalSize !== null && upload.partSize !== null ? partCount(upload.totalSize, upload.partSize) : null;
  }

  private s3UploadIdOf(upload: FileUpload): string {
    if (!upload.s3UploadId) throw conflict('the upload has no S3 multipart upload (its creation failed)');
    return upload.s3UploadId;
  }

  private lost(upload: FileUpload) {
    return this.uploads.states.markLost(upload.id, 'the multipart upload no longer exists in storage');
  }

  private completedAnswer(upload: FileUpload): CompletedUpload {
    return {
      id: upload.id,
      key: upload.storageKey,
      location: this.storage.objectUrl(upload.storageKey),
      size: upload.totalSize ?? upload.bytesReceived,
      status: upload.status === 'awaiting_approval' ? 'awaiting_approval' : 'completed',
    };
  }
}
