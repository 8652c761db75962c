/**
 * Who may see which upload, and in what state a request finds it: the reads of the upload-state service. Another
 * user's upload is a 404 exactly like a missing one; an ended upload is gone (410) for a request that would
 * continue it; an open one idle past its expiry is expired on the spot (unless a writer holds it).
 */
import { gone, notFound } from '../errors.js';
import type { UploadRepository } from '../db/repository.js';
import type { FileUpload, UploadProtocol } from '../db/schema.js';
import { goneReason, isOpen, wasTerminated } from '../lifecycle.js';
import type { UploadContext } from './context.js';
import type { UploadStates } from './states.js';

/** Throws 410 for an upload that ended (lifecycle ENDED): it is gone. */
function ended(upload: FileUpload): void {
  const reason = goneReason(upload.status, upload.error);
  if (reason !== undefined) throw gone(reason);
}

export class UploadAccess {
  constructor(
    private readonly context: UploadContext,
    private readonly states: UploadStates,
  ) {}

  /**
   * The caller's upload. Another user's upload is answered exactly like a missing one: 404; so is, when
   * `protocol` is given, an upload of the other protocol (each path acts only on its own uploads).
   */
  async getOwned(userId: string, id: string, protocol?: UploadProtocol): Promise<FileUpload> {
    const upload = await this.context.repo.findOwnedUpload(userId, id);
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
    const found = await this.context.repo.findOwnedUploadProbingWriter(userId, id);
    if (found?.upload.protocol !== 'tus') throw notFound();
    return { upload: await this.live(found.upload), writing: found.writing };
  }

  private async live(upload: FileUpload): Promise<FileUpload> {
    ended(upload);
    if (isOpen(upload.status) && upload.expiresAt && upload.expiresAt <= this.context.now()) {
      const [expired] = await this.states.expireIdle([upload.id]);
      if (expired) throw gone(`the upload expired at ${upload.expiresAt.toISOString()}`);
      // A writer holds it, or a request is completing it, or it made progress meanwhile: it lives (unless
      // another request ended it meanwhile).
      const current = await this.context.repo.findUpload(upload.id);
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

  /** The upload's record, if any, for storage code acting on an upload whose owner was already checked. */
  async findForStorage(id: string): Promise<FileUpload | undefined> {
    return this.context.repo.findUpload(id);
  }

  /** Any upload by id, for storage code acting on an upload whose owner was already checked. */
  async getUploadForStorage(id: string): Promise<FileUpload> {
    return this.context.getUpload(id);
  }

  async findByS3UploadId(userId: string, s3UploadId: string, protocol?: UploadProtocol): Promise<FileUpload> {
    const upload = await this.context.repo.findOwnedUploadByS3UploadId(userId, s3UploadId);
    if (!upload || (protocol !== undefined && upload.protocol !== protocol)) throw notFound();
    return upload;
  }

  /** The records of the uploads with these keys (storage_key) that exist, by key: the janitor finds them so. */
  async findManyByStorageKey(keys: readonly string[]): Promise<Map<string, FileUpload>> {
    return new Map(
      (await this.context.repo.findUploadsByStorageKey(keys)).map((upload) => [upload.storageKey, upload]),
    );
  }

  async list(userId: string, options: Parameters<UploadRepository['listings']['listOwnedUploads']>[1]) {
    return this.context.repo.listings.listOwnedUploads(userId, options);
  }
}
