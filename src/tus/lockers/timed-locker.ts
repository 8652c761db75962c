/**
 * Any UploadLocker (the Postgres one, or the in-process MemoryLocker), with the time each request waits for an
 * upload's lock measured: how long a client waits behind another request of the same upload.
 */
import { ERRORS, type Lock } from '@tus/utils';
import type { UploadLocker } from './locker.js';

export type LockWaitObserver = (seconds: number, outcome: 'acquired' | 'timeout' | 'failed') => void;

export function timedLocker(locker: UploadLocker, observe: LockWaitObserver): UploadLocker {
  return {
    heldHere: (id) => locker.heldHere(id),
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
