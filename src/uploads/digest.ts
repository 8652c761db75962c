/**
 * The running SHA-256 of an upload, kept while its bytes stream through the server and saved with every offset
 * PostgreSQL records (sha256/state.ts: a documented format, version 1, 41–104 bytes, base64): any instance,
 * after any crash, continues it from exactly the bytes stored, and the digest at completion is of the bytes
 * actually stored, without reading them back.
 *
 * The hashing is OpenSSL's (SHA-NI where the CPU has it), built into native/sha256 by `npm ci`, and runs on
 * libuv's threadpool in batches, so the event loop only copies bytes: bench/sha256.ts measured a quarter of the
 * CPU hash-wasm took (Freight's hashing before, on worker threads), the event loop busy a sixth as long. A
 * checkout whose native build is missing fails here, at start, saying how to build it: there is no slower
 * fallback to drift from it.
 */
import { BufferPool } from './buffer-pool.js';
import { nativeSha256 } from './sha256/native.js';
import { decodeState, encodeState } from './sha256/state.js';

const sha = nativeSha256();

/** Bytes gathered before they go to the threadpool as one job. */
const BATCH = 1024 * 1024;
/** Bytes handed to the threadpool and not yet hashed beyond which `update` asks its caller to wait. */
const BACKLOG = 4 * BATCH;
/** A batch this small, with nothing queued before it, is hashed in place: cheaper than a trip to the threadpool. */
const IN_PLACE = 64 * 1024;
/** Batch buffers kept for the next digests (the rest are left to the GC): bounded, whatever the load. */
const SPARES_KEPT = 16;
/** The batches of every digest of this process (none kept once the digests stop; see buffer-pool.ts). */
const batches = new BufferPool(SPARES_KEPT * BATCH);

/** A stored state that does not load (another format, or not of the bytes stored). */
const unusable = (error: unknown): Error =>
  new Error(`hashing failed: ${error instanceof Error ? error.message : String(error)}`);

/** The SHA-256 context of a stored state (null at offset 0: a new one). */
function contextOf(state: string | null, offset: number): Uint8Array {
  const context = new Uint8Array(sha.contextSize);
  if (state === null) {
    sha.init(context);
    return context;
  }
  try {
    sha.load(context, decodeState(state, offset));
  } catch (error) {
    throw unusable(error);
  }
  return context;
}

export class RunningDigest {
  private batch: Buffer | undefined;
  private batched = 0;
  /** The end of the chain of steps (a batch hashed, a state saved, the digest): each runs after the one before. */
  private tail: Promise<void> = Promise.resolve();
  /** Steps in the chain not yet done; at 0 the context is free to use in place. */
  private pending = 0;
  /** Bytes handed to the threadpool and not yet hashed. */
  private queued = 0;
  private caughtUp: { below: number; resolve(): void } | undefined;
  private failure: Error | undefined;

  private constructor(private readonly context: Uint8Array) {}

  /**
   * The digest as of `offset`, from its saved `state` (null at offset 0: a new one). Undefined when it cannot be
   * known (an upload older than digests, or whose state was lost): the upload then gets no digest. Rejects when
   * the state does not load. Close it when done.
   */
  static async resume(state: string | null, offset: number): Promise<RunningDigest | undefined> {
    if (state === null && offset !== 0) return undefined;
    return new RunningDigest(contextOf(state, offset));
  }

  /** Feeds bytes (copied); when a promise comes back, the hashing is behind: await it before feeding more. */
  update(bytes: Uint8Array): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    let offset = 0;
    while (offset < bytes.length) {
      this.batch ??= batches.take(BATCH);
      const take = Math.min(bytes.length - offset, BATCH - this.batched);
      this.batch.set(bytes.subarray(offset, offset + take), this.batched);
      this.batched += take;
      offset += take;
      if (this.batched === BATCH) this.flush();
    }
    if (this.queued <= BACKLOG) return undefined;
    return new Promise((resolve) => (this.caughtUp = { below: BACKLOG / 2, resolve }));
  }

  /** The state after everything fed so far, to save with the offset it reached. */
  save(): Promise<string> {
    this.flush();
    return this.step(() => encodeState(sha.save(this.context)));
  }

  /** The hex digest of everything fed so far (once: the digest ends it). */
  hex(): Promise<string> {
    this.flush();
    return this.step(() => Buffer.from(sha.digest(this.context)).toString('hex'));
  }

  /** Done feeding: the steps already asked for still run (each holds what it needs); bytes not saved are dropped. */
  close(): void {
    if (this.batch) batches.give(this.batch);
    this.batch = undefined;
    this.batched = 0;
  }

  /** The hex digest of the bytes behind a saved state (null at offset 0: the empty upload's). A one-off, in place. */
  static async hexOf(state: string | null, offset: number): Promise<string | undefined> {
    if (state === null && offset !== 0) return undefined;
    return Buffer.from(sha.digest(contextOf(state, offset))).toString('hex');
  }

  /** Runs `read` after every step before it (right away when there is none). */
  private step<T>(read: () => T): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending === 0) {
      try {
        return Promise.resolve(read());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    this.pending++;
    const result = this.tail.then(() => {
      if (this.failure) throw this.failure;
      return read();
    });
    this.tail = result.then(
      () => void this.pending--,
      () => void this.pending--,
    );
    return result;
  }

  /** Hands the gathered bytes on: to the threadpool, or in place when they are few and nothing is ahead of them. */
  private flush(): void {
    const batch = this.batch;
    const length = this.batched;
    if (!batch || length === 0 || this.failure) return;
    this.batch = undefined;
    this.batched = 0;
    if (this.pending === 0 && length <= IN_PLACE) {
      sha.update(this.context, batch.subarray(0, length));
      batches.give(batch);
      return;
    }
    this.pending++;
    this.queued += length;
    this.tail = this.tail
      .then(
        () =>
          new Promise<void>((resolve) => {
            if (this.failure) return resolve();
            sha.updateAsync(this.context, batch.subarray(0, length), (error) => {
              if (error) this.fail(error);
              resolve();
            });
          }),
      )
      .then(() => {
        this.pending--;
        this.queued -= length;
        batches.give(batch);
        if (this.caughtUp && this.queued <= this.caughtUp.below) {
          this.caughtUp.resolve();
          this.caughtUp = undefined;
        }
      });
  }

  private fail(error: Error): void {
    this.failure ??= new Error(`hashing failed: ${error.message}`);
    // A writer waiting to feed more learns of it from its next update.
    this.caughtUp?.resolve();
    this.caughtUp = undefined;
  }
}

/** Whether an upload's bytes are hashed as they stream: always with UPLOAD_SHA256, and whenever a digest was announced. */
export const hashes = (enabled: boolean, metadata: Record<string, string | null> | null): boolean =>
  enabled || typeof metadata?.sha256 === 'string';

/** A client's announced digest (Upload-Metadata `sha256`): 64 hex digits. */
export const isSha256Hex = (value: string): boolean => /^[0-9a-f]{64}$/i.test(value);
