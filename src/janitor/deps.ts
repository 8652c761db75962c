/**
 * What a janitor run works with (its steps, expiry.ts, prune.ts and the sweeps, all take it), and its clock: built
 * from the server's own parts or from the configuration by wiring.ts.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ExclusiveRun } from '../db/client.js';
import type { WebhookOutbox } from '../db/webhook-outbox.js';
import type { BucketInventory } from '../storage/inventory.js';
import type { MultipartStorage } from '../storage/multipart.js';
import type { S3Objects } from '../storage/objects.js';
import type { FinalAssemblies } from '../tus/assembly.js';
import type { FreightStore } from '../tus/upload-record.js';
import type { UploadService } from '../uploads/service.js';

/** The bucket, when storage is S3. */
export interface S3Parts {
  multipart: MultipartStorage;
  objects: S3Objects;
  inventory: BucketInventory;
}

export interface JanitorDeps {
  uploads: UploadService;
  /** The tus store: its expireUploads() marks tus uploads expired and removes their storage. */
  tusStore: Pick<FreightStore, 'expireUploads'>;
  /** undefined on the local file store (nothing to sweep there). */
  s3: S3Parts | undefined;
  /** Runs the work unless another instance runs the janitor now (Database.exclusive with JANITOR_LOCK_KEY). */
  exclusive: <T>(work: () => Promise<T>) => Promise<ExclusiveRun<T>>;
  /**
   * The server's assembly of final uploads (tus concatenation): each run takes up the unfinished finals nobody
   * assembles (a retry lost with its process). undefined in `freight cleanup`, which assembles nothing.
   */
  finals?: Pick<FinalAssemblies, 'resumeIdle'> | undefined;
  /** The webhook outbox, whose delivered events are pruned after DELIVERED_EVENTS_KEPT_MS. */
  outbox?: Pick<WebhookOutbox, 'pruneDelivered'> | undefined;
  /** UPLOAD_EXPIRY: also how old an unrecorded multipart upload or staged object must be before it is removed. */
  expiryMs: number;
  /** UPLOAD_RETENTION: how long the rows of ended uploads are kept. */
  retentionMs: number;
  log: FastifyBaseLogger;
  now?: () => Date;
}

/** The janitor's clock: `now` when given (tests move it), else the wall clock. */
export const nowOf = (deps: Pick<JanitorDeps, 'now'>): Date => deps.now?.() ?? new Date();
