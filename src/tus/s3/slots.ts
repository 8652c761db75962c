/**
 * Part slots and the temp-disk budget of the process.
 *
 * A slot (S3_PART_CONCURRENCY) is held only while a piece whose bytes are all on temp disk is sent to S3: never
 * while a client's bytes are awaited, so a slow client cannot keep one (invariant 5). A piece is buffered on
 * temp disk without a slot, within the process's budget (TEMP_DISK_LIMIT): a piece that would pass it fails its
 * request with 507 and Retry-After instead of filling the disk. Waiters for a slot are served first come, first
 * served; a wait ends when its signal aborts (the request is asked to stop, or its client went away), but a free
 * slot is taken whatever the signal says: storing what already arrived costs no one anything.
 */
import { insufficientStorage } from '../../errors.js';

/** A wait for a slot that ended because its request no longer wants one (stopped, or its client is gone). */
export class SlotWaitEnded extends Error {
  override readonly name = 'SlotWaitEnded';
}

export class PartSlots {
  private free: number;
  private readonly waiters: Array<() => void> = [];
  /** Bytes in the part files of this process (GET /metrics: freight_temp_bytes_buffered). */
  tempBytes = 0;

  constructor(
    readonly capacity: number,
    /** The most bytes the process's part files may hold at once (TEMP_DISK_LIMIT). */
    readonly diskLimit: number = Number.POSITIVE_INFINITY,
  ) {
    this.free = capacity;
  }

  get inUse(): number {
    return this.capacity - this.free;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Resolves with a release function once a slot is this caller's: at once when one is free, else when one is
   * handed over. Rejects with SlotWaitEnded if `signal` aborts first (or has aborted and no slot is free).
   */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.free > 0 && this.waiters.length === 0) {
      this.free--;
      return this.releaser();
    }
    if (signal?.aborted)
      throw new SlotWaitEnded('the request stopped waiting for a part slot', { cause: signal.reason });
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const index = this.waiters.indexOf(grant);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new SlotWaitEnded('the request stopped waiting for a part slot', { cause: signal?.reason }));
      };
      this.waiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    return this.releaser();
  }

  /** Runs `send` holding a slot, and gives the slot back when it settles. */
  async sending<T>(signal: AbortSignal | undefined, send: () => Promise<T>): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await send();
    } finally {
      release();
    }
  }

  /** Counts `bytes` more on temp disk; a 507 (nothing counted) when that would pass the budget. */
  reserveDisk(bytes: number): void {
    if (this.tempBytes + bytes > this.diskLimit) {
      throw insufficientStorage(
        `the server's temp disk for parts is full (TEMP_DISK_LIMIT, ${this.diskLimit} bytes); retry later`,
      );
    }
    this.tempBytes += bytes;
  }

  releaseDisk(bytes: number): void {
    this.tempBytes -= bytes;
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
