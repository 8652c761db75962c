/**
 * What the parts of the upload-state service share: the repository, the options (clock, expiry, bounds, metrics,
 * locks), and the one way a status changes (a transition of the lifecycle table, counted as the table says).
 */
import { notFound } from '../errors.js';
import type { UploadRepository } from '../db/repository.js';
import type { FileUpload, ObjectShape, UploadProtocol } from '../db/schema.js';
import { type CountedChange, TRANSITIONS, type Transition, type TransitionName } from '../lifecycle.js';
import type { MetadataLimits } from './metadata.js';
import type { Metrics } from '../ops/metrics.js';
import type { PreFinishCheck } from './approval.js';
import { ProgressThrottle } from './progress.js';

/** What the pre-create check asked of the object: its key under S3_KEY_PREFIX (unset: the id), and its shape. */
export interface Admission {
  key?: string;
  shape: ObjectShape;
}

export interface NewUpload {
  id: string;
  userId: string;
  protocol: UploadProtocol;
  filename: string | null;
  mimeType: string | null;
  /** null while the length is deferred. */
  totalSize: number | null;
  /** The key under S3_KEY_PREFIX (the upload's id), unless the pre-create check names another. */
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

export interface UploadServiceOptions {
  /** UPLOAD_EXPIRY: how long an upload may go without progress before it expires. */
  expiryMs: number;
  /**
   * Asked before every creation, before anything is recorded (WEBHOOK_PRE_CREATE): throws to refuse the upload
   * (the error is the client's answer); may name the object's key and shape.
   */
  admit?: ((upload: NewUpload) => Promise<Admission | undefined>) | undefined;
  /** S3_KEY_PREFIX: put before every new upload's key (its id, or the key admit named). */
  keyPrefix?: string;
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
  /** WEBHOOK_PRE_FINISH: asked before an assembled upload counts as completed (approval.ts); unset: it just does. */
  preFinish?: PreFinishCheck | undefined;
  /** WEBHOOK_PROGRESS_INTERVAL: at most one upload.progress event per upload this often; 0 or unset: none. */
  progressIntervalMs?: number | undefined;
}

export class UploadContext {
  /** When each upload's progress was last reported (upload.progress events). */
  readonly progress: ProgressThrottle;

  constructor(
    readonly repo: UploadRepository,
    readonly options: UploadServiceOptions,
  ) {
    this.progress = new ProgressThrottle(options.progressIntervalMs ?? 0, () => this.now());
  }

  /**
   * An upload.progress event, if its interval has passed for this upload (ProgressThrottle; written and coalesced
   * by UploadRepository.reportProgress). Best effort: an event that cannot be written costs the upload nothing.
   */
  async reportProgress(id: string): Promise<void> {
    if (!this.progress.due(id)) return;
    await this.repo.approvals.reportProgress(id).catch(() => {});
  }

  now(): Date {
    return this.options.now?.() ?? new Date();
  }

  /** The expiry of an upload that makes progress now: UPLOAD_EXPIRY from now. */
  idleExpiry(): Date {
    return new Date(this.now().getTime() + this.options.expiryMs);
  }

  /** Counts a state change that happened (a guarded UPDATE that returned its row). */
  counted<T extends FileUpload | undefined>(event: CountedChange, row: T): T {
    if (row) this.options.metrics?.countUpload(event, row.protocol);
    return row;
  }

  /** One transition of the lifecycle (guarded, its webhook event in the same statement), counted as the table says. */
  async change(
    id: string,
    name: TransitionName,
    set?: Parameters<UploadRepository['transition']>[2],
  ): Promise<FileUpload | undefined> {
    const row = await this.repo.transition(id, name, set);
    const counted = (TRANSITIONS[name] as Transition).counted;
    return counted === undefined ? row : this.counted(counted, row);
  }

  /** Any upload by id, for code acting on an upload whose owner was already checked: 404 when there is none. */
  async getUpload(id: string): Promise<FileUpload> {
    const upload = await this.repo.findUpload(id);
    if (!upload) throw notFound();
    return upload;
  }
}
