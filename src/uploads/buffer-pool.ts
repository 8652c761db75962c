/**
 * Buffers reused rather than left to the garbage collector: the running SHA-256's batches (digest.ts) and the
 * bodies of whole uploads (tus/s3/whole.ts). A buffer dropped is memory until V8's next full collection, which
 * under many uploads at once comes only every few dozen MiB of them: the load row's RSS was that garbage as much as
 * the uploads it served. A pool holds at most `capacity` bytes, and none once nothing was taken from it for
 * `idleMs`, so that a server at rest holds none (they are collected with the rest at its next full collection).
 */

/** Sizes are kept in steps of this many bytes: bodies of nearby sizes share their buffers. */
const STEP = 64 * 1024;

const roundUp = (size: number): number => Math.max(STEP, Math.ceil(size / STEP) * STEP);

export class BufferPool {
  private readonly spares = new Map<number, Buffer[]>();
  private held = 0;
  private takenLately = false;
  private trimming: NodeJS.Timeout | undefined;

  constructor(
    private readonly capacity: number,
    private readonly idleMs = 5_000,
  ) {}

  /** Bytes of spare buffers held now. */
  get bytesHeld(): number {
    return this.held;
  }

  /** A buffer of `size` bytes whose contents are whatever they were (a spare one when the pool has one). */
  take(size: number): Buffer {
    this.takenLately = true;
    const step = roundUp(size);
    const spare = this.spares.get(step)?.pop();
    if (spare) this.held -= step;
    return (spare ?? Buffer.allocUnsafeSlow(step)).subarray(0, size);
  }

  /** A buffer from take() that nothing uses any more (kept while the pool has room). */
  give(buffer: Buffer): void {
    // take() hands out the start of a buffer of its own: all of it goes back.
    const whole = Buffer.from(buffer.buffer);
    if (this.held + whole.length <= this.capacity) {
      const spares = this.spares.get(whole.length) ?? [];
      spares.push(whole);
      this.spares.set(whole.length, spares);
      this.held += whole.length;
    }
    this.trimming ??= setTimeout(() => this.trimIdle(), this.idleMs).unref();
  }

  /** Every spare dropped if none was taken since the last look; otherwise another look in `idleMs`. */
  private trimIdle(): void {
    this.trimming = undefined;
    if (!this.takenLately) {
      this.spares.clear();
      this.held = 0;
      return;
    }
    this.takenLately = false;
    this.trimming = setTimeout(() => this.trimIdle(), this.idleMs).unref();
  }
}
