/**
 * Any Locker, with the uploads whose lock a request of this process holds or waits for known, so that expiry can
 * leave them alone (UploadLockWatch). Needed for locks that live in memory (the in-memory locker of the embedded
 * PGlite, which SQL cannot see); the PostgreSQL locker's advisory locks are tested by the expiring statement
 * itself, on every instance, so app.ts does not watch that one.
 *
 * The watch is exact: `excluding` reads the set and, until its work (one expiring statement) is done, holds back
 * every request that starts to take a lock now, so none can take one, read its upload as live and be expired
 * under it. Those requests then find the upload expired before they write a byte.
 */
import type { Lock } from '@tus/utils';
import type { UploadLockWatch } from '../../uploads/service.js';
import type { UploadLocker } from './locker.js';

export class WatchedLocker implements UploadLocker, UploadLockWatch {
  /** Requests of this process holding or waiting for each upload's lock. */
  private readonly interest = new Map<string, number>();
  private paused: Promise<void> | undefined;

  constructor(private readonly inner: UploadLocker) {}

  heldHere(id: string): boolean {
    return this.inner.heldHere(id);
  }

  newLock(id: string): Lock {
    const lock = this.inner.newLock(id);
    let counted = false;
    return {
      lock: async (signal, requestRelease) => {
        while (this.paused) await this.paused;
        this.count(id, 1);
        counted = true;
        try {
          await lock.lock(signal, requestRelease);
        } catch (error) {
          counted = false;
          this.count(id, -1);
          throw error;
        }
      },
      unlock: async () => {
        try {
          await lock.unlock();
        } finally {
          if (counted) {
            counted = false;
            this.count(id, -1);
          }
        }
      },
    };
  }

  async excluding<T>(work: (held: ReadonlySet<string>) => Promise<T>): Promise<T> {
    while (this.paused) await this.paused;
    let resume = () => {};
    this.paused = new Promise((resolve) => (resume = resolve));
    try {
      return await work(new Set(this.interest.keys()));
    } finally {
      this.paused = undefined;
      resume();
    }
  }

  private count(id: string, change: 1 | -1): void {
    const count = (this.interest.get(id) ?? 0) + change;
    if (count > 0) this.interest.set(id, count);
    else this.interest.delete(id);
  }
}
