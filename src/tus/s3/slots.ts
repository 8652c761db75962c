/**
 * Part slots: how many parts this process buffers on temp disk or sends to S3 at once (S3_PART_CONCURRENCY).
 * Each slot is one temp file of up to a part size, so they bound the temp disk. Waiters are served first come,
 * first served; a request only asks for a slot once it has bytes to buffer (see piece.ts), and gives it back
 * as soon as its part is stored or its body stalls (body.ts), so slow clients cannot keep fast ones waiting.
 */
export class PartSlots {
  private free: number;
  private readonly waiters: Array<() => void> = [];
  /** Bytes in the part files of the pieces holding slots (GET /metrics: freight_temp_bytes_buffered). */
  tempBytes = 0;

  constructor(readonly capacity: number) {
    this.free = capacity;
  }

  get inUse(): number {
    return this.capacity - this.free;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves with a release function once a slot is free; rejects if `signal` aborts first. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.free > 0 && this.waiters.length === 0) {
      this.free--;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const index = this.waiters.indexOf(grant);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(signal?.reason);
      };
      this.waiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    return this.releaser();
  }

  /** A release that works once: a slot handed to the next waiter, or back to the pool. */
  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    };
  }
}
