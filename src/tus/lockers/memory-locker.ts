/**
 * The tus lock within one process: the embedded defaults, whose PGlite only one process can open. Waiters queue
 * and sleep until the lock changes hands, the holder is asked once to let go, and a wait ends at the stop signal
 * or after `acquireTimeoutMs` (ERR_LOCK_TIMEOUT, answered 423). @tus/server's MemoryLocker, which this replaces,
 * polls with setImmediate for as long as it waits (a busy loop of up to LOCK_TIMEOUT) and asks the holder again on
 * every turn. Both pass the same locker contract (test/tus/lockers/locker.contract.e2e.test.ts).
 */
import { ERRORS, type Lock, type RequestRelease } from '@tus/utils';
import type { UploadLocker } from './locker.js';

interface Holder {
  requestRelease: RequestRelease;
  asked: boolean;
  /** Woken when the lock is given back. */
  waiters: Set<() => void>;
}

export class MemoryLocker implements UploadLocker {
  private readonly holders = new Map<string, Holder>();

  constructor(private readonly options: { acquireTimeoutMs: number }) {}

  heldHere(id: string): boolean {
    return this.holders.has(id);
  }

  newLock(id: string): Lock {
    let holder: Holder | undefined;
    return {
      lock: async (stopSignal, requestRelease) => {
        holder = await this.acquire(id, requestRelease, stopSignal);
      },
      unlock: async () => {
        if (!holder || this.holders.get(id) !== holder) throw new Error('Releasing an unlocked lock!');
        this.holders.delete(id);
        for (const wake of holder.waiters) wake();
        holder = undefined;
      },
    };
  }

  private async acquire(id: string, requestRelease: RequestRelease, stopSignal: AbortSignal): Promise<Holder> {
    const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(this.options.acquireTimeoutMs)]);
    for (;;) {
      const current = this.holders.get(id);
      if (!current) {
        const holder: Holder = { requestRelease, asked: false, waiters: new Set() };
        this.holders.set(id, holder);
        return holder;
      }
      if (signal.aborted) throw ERRORS.ERR_LOCK_TIMEOUT;
      if (!current.asked) {
        current.asked = true;
        void Promise.resolve()
          .then(current.requestRelease)
          .catch(() => {});
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          current.waiters.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        current.waiters.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }
}
