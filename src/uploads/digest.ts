/**
 * The running SHA-256 of an upload, kept while its bytes stream through the server and saved with every offset
 * PostgreSQL records (hash-wasm's state, ~116 bytes, base64): any instance, after any crash, continues it from
 * exactly the bytes stored, and the digest at completion is of the bytes actually stored, without reading them
 * back. hash-wasm is pinned exactly in package.json: a saved state only loads into the same build.
 */
import { createSHA256 } from 'hash-wasm';
import { newWorkerHasher, type WorkerHasher } from './hash-workers.js';

export class RunningDigest {
  private constructor(private readonly hasher: WorkerHasher) {}

  /**
   * The digest as of `offset`, from its saved `state` (null at offset 0: a new one), hashed on a worker thread
   * (hash-workers.ts). Undefined when it cannot be known (an upload older than digests, or whose state was lost):
   * the upload then gets no digest. Close it when done.
   */
  static async resume(state: string | null, offset: number): Promise<RunningDigest | undefined> {
    if (state === null && offset !== 0) return undefined;
    const hasher = newWorkerHasher();
    try {
      await hasher.open(state);
    } catch (error) {
      hasher.close();
      throw error;
    }
    return new RunningDigest(hasher);
  }

  /** Feeds bytes; when a promise comes back, the hashing is behind: await it before feeding more. */
  update(bytes: Uint8Array): Promise<void> | undefined {
    return this.hasher.update(bytes);
  }

  /** The hex digest of everything fed so far (once: the digest ends it). */
  hex(): Promise<string> {
    return this.hasher.hex();
  }

  /** The state after everything fed so far, to save with the offset it reached. */
  save(): Promise<string> {
    return this.hasher.save();
  }

  /** Frees the hasher, after every save already asked for. */
  close(): void {
    this.hasher.close();
  }

  /** The hex digest of the bytes behind a saved state (null at offset 0: the empty upload's). A one-off, in place. */
  static async hexOf(state: string | null, offset: number): Promise<string | undefined> {
    if (state === null && offset !== 0) return undefined;
    const hasher = await createSHA256();
    if (state === null) hasher.init();
    else hasher.load(Buffer.from(state, 'base64'));
    return hasher.digest('hex');
  }
}

/** Whether an upload's bytes are hashed as they stream: always with UPLOAD_SHA256, and whenever a digest was announced. */
export const hashes = (enabled: boolean, metadata: Record<string, string | null> | null): boolean =>
  enabled || typeof metadata?.sha256 === 'string';

/** A client's announced digest (Upload-Metadata `sha256`): 64 hex digits. */
export const isSha256Hex = (value: string): boolean => /^[0-9a-f]{64}$/i.test(value);
