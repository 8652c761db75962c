/**
 * The tus lock as Freight uses it: @tus/utils' Locker (newLock → lock(signal, requestRelease), unlock), plus one
 * question a resume check asks without waiting: is a request of this process writing the upload right now?
 * (Whether one of another instance is, the database tells: see UploadRepository.findOwnedForResumeCheck.)
 */
import type { Locker } from '@tus/utils';

export interface UploadLocker extends Locker {
  /** True when a request of this process holds the upload's lock now (no waiting, no query). */
  heldHere(id: string): boolean;
}
