/**
 * The small-upload path. A request that brings a whole upload of at most one part, from offset 0 (tus-js-client's
 * one PATCH, or a creation with its bytes), is held in memory and stored as one object with one PutObject (its
 * SHA-256 tag in the same call), then recorded (offset, part, digest, completion and its webhook event) in one
 * statement: instead of CreateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload, PutObjectTagging
 * and the staging listing, with four more database round trips. Measured in docs/benchmarks.md.
 *
 * The guarantees are the write path's:
 * - the offset moves only once S3 holds the bytes (the one statement runs after PutObject answered);
 * - the digest is computed from the bytes sent and recorded; an announced one is checked before anything is
 *   stored (a mismatch is 460 and the upload `rejected`); an Upload-Checksum before anything is stored either;
 * - a body that ends early, stalls or is stopped is not a whole upload: what arrived goes through the ordinary
 *   path (staged in S3 and recorded as always), or nothing is recorded when its Upload-Checksum cannot match;
 * - a crash after PutObject and before the statement leaves the row at offset 0 and an object under the upload's
 *   key: the client's resume sends the bytes again (the object is written again), and an upload that ends instead
 *   has that object removed with the rest of its storage (FreightS3Store.discard).
 *
 * Memory: the bytes of such requests are held in RAM within a budget per process (WHOLE_BUDGET), first come first
 * served; a request that does not get its share within WHOLE_WAIT_MS (or is asked to stop) takes the ordinary path.
 * It waits before it reads its body, so nothing is held while it waits for its client.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { FileUpload } from '../../db/schema.js';
import { checksumMismatch, gone } from '../../errors.js';
import type { S3Objects } from '../../storage/objects.js';
import type { BufferPool } from '../../uploads/buffer-pool.js';
import { hashes } from '../../uploads/digest.js';
import type { UploadService } from '../../uploads/service.js';
import { BodyReader, BodyStalled, type StallRule } from '../body.js';
import type { WriteOptions } from '../upload-record.js';

const MiB = 1024 * 1024;
/** The largest upload taken this way (and never more than the upload's part size). */
export const WHOLE_MAX = 8 * MiB;
/** Bytes of whole uploads one process holds in memory at once. */
export const WHOLE_BUDGET = 32 * MiB;

/**
 * How long a request waits for its share of the budget before it takes the ordinary path: long enough for the
 * requests ahead of it to store theirs under load (measured: without a wait, the ~7 % of the load row's uploads
 * that went the ordinary path made its p99), short enough that a stuck budget costs little.
 */
export const WHOLE_WAIT_MS = 2_000;

/**
 * Bytes of memory handed out first come, first served. A request waits for its share before it reads a byte of its
 * body (its client's bytes wait in TCP buffers meanwhile: nothing is held while waiting for them), and gives up
 * when its signal aborts (it then goes elsewhere).
 */
export class MemoryBudget {
  private used = 0;
  private readonly waiters: Array<{ bytes: number; grant: () => void }> = [];

  constructor(readonly capacity: number) {}

  get inUse(): number {
    return this.used;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** A release function once `bytes` are free (at once if they are and nobody waits); undefined if `signal` aborts first. */
  async take(bytes: number, signal: AbortSignal): Promise<(() => void) | undefined> {
    if (bytes > this.capacity || signal.aborted) return undefined;
    if (this.waiters.length === 0 && this.used + bytes <= this.capacity) return this.hand(bytes);
    const granted = await new Promise<boolean>((resolve) => {
      const waiter = {
        bytes,
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        },
      };
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        // The next in line may fit where this one did not.
        this.grantWaiters();
        resolve(false);
      };
      this.waiters.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    return granted ? this.releaser(bytes) : undefined;
  }

  private hand(bytes: number): () => void {
    this.used += bytes;
    return this.releaser(bytes);
  }

  private releaser(bytes: number): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.grantWaiters();
    };
  }

  /** Hands memory to the waiters in order, as long as the first one fits. */
  private grantWaiters(): void {
    while (this.waiters.length > 0 && this.used + this.waiters[0]!.bytes <= this.capacity) {
      const next = this.waiters.shift()!;
      this.used += next.bytes;
      next.grant();
    }
  }
}

export interface WholeDeps {
  uploads: UploadService;
  objects: S3Objects;
  stall: StallRule;
  hashing: boolean;
  /** S3_TAGGING: the SHA-256 goes on the object as a tag. */
  tagging: boolean;
  budget: MemoryBudget;
  /** The buffers the bodies are read into, reused (at most WHOLE_BUDGET of them kept). */
  bodies: BufferPool;
  log: FastifyBaseLogger;
}

/** Whether a write from `record`'s stored offset may be a whole upload: offset 0, nothing staged, one part. */
export function mayBeWhole(record: FileUpload): boolean {
  const size = record.totalSize;
  return (
    size !== null &&
    size > 0 &&
    size <= WHOLE_MAX &&
    record.partSize !== null &&
    size <= record.partSize &&
    record.storedOffset === 0 &&
    record.staging === null &&
    record.s3UploadId === null &&
    record.concat !== 'final'
  );
}

export interface WholeWrite {
  /** The body's bytes that are not a whole upload, through the ordinary path: the offset it stored. */
  ordinary(bytes: Readable): Promise<number>;
  /** What S3 holds of an upload that will never complete, removed (the object a crashed attempt left included). */
  discard(record: FileUpload): Promise<void>;
}

/**
 * Writes `record` (see mayBeWhole) from `source`: the offset stored, or undefined when the memory budget stayed
 * spent for WHOLE_WAIT_MS (nothing was read: the caller writes it the ordinary way).
 */
export async function writeWhole(
  deps: WholeDeps,
  record: FileUpload,
  source: Readable,
  options: WriteOptions,
  then: WholeWrite,
): Promise<number | undefined> {
  const size = record.totalSize!;
  // With WEBHOOK_PRE_FINISH the upload awaits approval once assembled (states.complete): the ordinary path.
  if (deps.uploads.ledger.asksBeforeCompleting(record)) return undefined;
  const waited = options.stop
    ? AbortSignal.any([options.stop, AbortSignal.timeout(WHOLE_WAIT_MS)])
    : AbortSignal.timeout(WHOLE_WAIT_MS);
  const release = await deps.budget.take(size, waited);
  if (!release) return undefined;
  try {
    const bytes = deps.bodies.take(size);
    const reader = new BodyReader(source, {
      ...options,
      limit: Math.min(options.limit ?? size, size),
      stall: deps.stall,
    });
    let received = 0;
    for await (const chunk of reader.chunks()) {
      chunk.copy(bytes, received);
      received += chunk.length;
    }
    if (!reader.complete || received < size) {
      // As in writer.ts: a body that did not arrive whole cannot match its Upload-Checksum. One that did (and is
      // only shorter than the upload) is checked by the ordinary path, which reads these same bytes.
      if (!reader.complete && options.checksum) {
        throw checksumMismatch(
          'the body did not arrive whole, so its Upload-Checksum cannot match; nothing was recorded',
        );
      }
      const end = await then.ordinary(Readable.from([bytes.subarray(0, received)]));
      if (reader.stalled) throw new BodyStalled(end);
      return end;
    }
    // "Once the entire request has been received, the Server MUST verify the uploaded chunk against the provided
    // checksum"; on a mismatch "the upload and its offset MUST NOT be updated".
    if (!reader.checksumMatches())
      throw checksumMismatch('the body does not have its Upload-Checksum; nothing was recorded');
    const sha256 = digestOf(deps, record, bytes);
    if (sha256 !== null) {
      try {
        await deps.uploads.states.verifyDigest(record, sha256);
      } catch (error) {
        // Rejected: nothing of this request was stored; an earlier attempt's object (a crash) goes.
        await then.discard(record);
        throw error;
      }
    }
    const etag = await put(deps, record, bytes, sha256);
    // Stored: nothing reads these bytes any more (on the other ways out they are left to the collector).
    deps.bodies.give(bytes);
    const completed = await deps.uploads.ledger.completeWhole(record, { size, etag, sha256, hashState: null });
    if (!completed) {
      // Ended while its bytes were on their way (terminated, or expired after its writer lost the lock): nothing
      // completed may outlive it.
      const ended = await deps.uploads.states.endedMeanwhile(record.id);
      await deps.objects.deleteObjects([record.storageKey]);
      throw gone(`the upload was ${ended?.status ?? 'ended'} while it was being completed; its object was removed`);
    }
    return size;
  } finally {
    release();
  }
}

/**
 * The upload's SHA-256, in one call over bytes already in memory: OpenSSL's, as the running digest's (digest.ts),
 * without its batch buffers (up to 1 MiB each per upload being hashed) or a trip to the threadpool for a body of
 * at most WHOLE_MAX. A completed upload is never continued, so no state is saved.
 */
function digestOf(deps: WholeDeps, record: FileUpload, bytes: Buffer): string | null {
  if (!hashes(deps.hashing, record.metadata)) return null;
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * PutObject with the object's headers, tagged with the digest (S3_TAGGING) beside the pre-create hook's tags. Tags
 * are best effort, as on the multipart path: should S3 refuse the object because of them, it is sent again without
 * (and the database has the digest).
 */
async function put(deps: WholeDeps, record: FileUpload, bytes: Buffer, sha256: string | null): Promise<string> {
  const object = { filename: record.filename ?? record.id, shape: record.objectShape };
  if (sha256 === null || !deps.tagging) return deps.objects.putWhole(record.storageKey, bytes, object);
  try {
    return await deps.objects.putWhole(record.storageKey, bytes, object, { ...record.objectShape?.tags, sha256 });
  } catch (error) {
    if (!refusedTagging(error)) throw error;
    deps.log.warn({ err: error, key: record.storageKey }, 'could not tag the object with its SHA-256');
    return deps.objects.putWhole(record.storageKey, bytes, object, {});
  }
}

/** S3 refused the request itself (4xx, not a throttle): the tag is the only thing this PutObject adds. */
function refusedTagging(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500 && status !== 403 && status !== 429;
}
