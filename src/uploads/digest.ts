/**
 * The running SHA-256 of an upload, kept while its bytes stream through the server and saved with every offset
 * PostgreSQL records (hash-wasm's state, ~116 bytes, base64): any instance, after any crash, continues it from
 * exactly the bytes stored, and the digest at completion is of the bytes actually stored, without reading them
 * back. hash-wasm is pinned exactly in package.json: a saved state only loads into the same build.
 */
import { createSHA256, type IHasher } from 'hash-wasm';

export class RunningDigest {
  private constructor(private readonly hasher: IHasher) {}

  /**
   * The digest as of `offset`, from its saved `state` (null at offset 0: a new one). Undefined when it cannot be
   * known (an upload older than digests, or whose state was lost): the upload then gets no digest.
   */
  static async resume(state: string | null, offset: number): Promise<RunningDigest | undefined> {
    const hasher = await createSHA256();
    if (state !== null) hasher.load(Buffer.from(state, 'base64'));
    else if (offset === 0) hasher.init();
    else return undefined;
    return new RunningDigest(hasher);
  }

  update(bytes: Uint8Array): void {
    this.hasher.update(bytes);
  }

  /** The hex digest of everything fed so far (once: the digest ends it). */
  hex(): string {
    return this.hasher.digest('hex');
  }

  /** The state to save with the offset reached so far. */
  save(): string {
    return Buffer.from(this.hasher.save()).toString('base64');
  }

  /** The hex digest of the bytes behind a saved state (null at offset 0: the empty upload's). */
  static async hexOf(state: string | null, offset: number): Promise<string | undefined> {
    const digest = await RunningDigest.resume(state, offset);
    return digest?.hasher.digest('hex');
  }
}

/** Whether an upload's bytes are hashed as they stream: always with UPLOAD_SHA256, and whenever a digest was announced. */
export const hashes = (enabled: boolean, metadata: Record<string, string | null> | null): boolean =>
  enabled || typeof metadata?.sha256 === 'string';

/** A client's announced digest (Upload-Metadata `sha256`, or the direct API's `sha256`): 64 hex digits. */
export const isSha256Hex = (value: string): boolean => /^[0-9a-f]{64}$/i.test(value);
