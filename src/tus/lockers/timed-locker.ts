/**
 * Any Locker (the Postgres one, or @tus/server's MemoryLocker), with the time each request waits for an upload's
 * lock measured: how long a client waits behind another request of the same upload.
 */
import { ERRORS, type Lock, type Locker } from '@tus/utils';

export type LockWaitObserver = (seconds: number, outcome: 'acquired' | 'timeout' | 'failed') => void;

export function timedLocker(locker: Locker, observe: LockWaitObserver): Locker {
  return {
    newLock(id: string): Lock {
      const lock = locker.newLock(id);
      return {
        lock: async (signal, requestRelease) => {
          const started = performance.now();
          const seconds = () => (performance.now() - started) / 1000;
          try {
            await lock.lock(signal, requestRelease);
          } catch (error) {
            observe(seconds(), error === ERRORS.ERR_LOCK_TIMEOUT ? 'timeout' : 'failed');
            throw error;
          }
          observe(seconds(), 'acquired');
        },
        unlock: () => lock.unlock(),
      };
    },
  };
}
