/**
 * The assembly of final uploads (tus concatenation), in the background: bounded in number, in attempts, and
 * idempotent (each attempt goes on from what earlier ones did: the stores' concatenate()).
 *
 * - At most CONCAT_CONCURRENCY assemblies run at once in this process; the others wait their turn in memory (a
 *   final waiting here when the process dies is taken up by the next start or janitor run: it is in the database).
 * - An attempt runs under the final's tus lock, so that one instance at a time assembles it. It stops between
 *   steps when the lock is wanted (a termination, another instance) or lost (the database went away): not a
 *   failure, it is tried again later.
 * - A failed attempt is counted (`assembly_attempts`) and the final is `failed` with the reason, then tried again
 *   5 s later, doubling to 5 min; after CONCAT_MAX_ATTEMPTS failed attempts, or at once when a partial upload is
 *   gone, it is `given_up` (upload.failed), and what storage holds of it is removed.
 * - A failure to record anything (the database down) counts nothing: the attempt is tried again later.
 * - Each instance takes up, at start and at every janitor run, the unfinished finals nobody assembles.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { FileUpload } from '../db/schema.js';
import { failureReason, messageOf } from '../errors.js';
import { isCompleted, isOpen } from '../lifecycle.js';
import type { UploadService } from '../uploads/service.js';
import type { UploadLocker } from './lockers/locker.js';
import { fromTusUtils } from './reply.js';
import { AssemblyInterrupted, type FreightStore } from './upload-record.js';

export interface AssemblyDeps {
  uploads: UploadService;
  store: FreightStore;
  locker: UploadLocker;
  log: FastifyBaseLogger;
  /** CONCAT_CONCURRENCY: assemblies running at once in this process. */
  concurrency: number;
  /** CONCAT_MAX_ATTEMPTS: failed attempts before a final upload is given up. */
  maxAttempts: number;
}

/** After attempt `attempt` (0-based) failed or was interrupted: the next one 5 s later, doubling to 5 min. */
export const retryDelayMs = (attempt: number): number => Math.min(5_000 * 2 ** attempt, 300_000);

/** Unfinished finals taken up per look (at start, at each janitor run); the next look takes the rest. */
const IDLE_FINALS_PER_LOOK = 1000;

/** Anything thrown, as an Error with a message (the @tus/utils errors are plain objects). */
function asError(error: unknown): Error {
  const named = fromTusUtils(error);
  return named instanceof Error ? named : new Error(messageOf(named));
}

/** Why a partial upload can no longer be part of a final (it ended, or its row is gone); undefined while it can. */
function unusablePartial(partial: FileUpload | undefined, id: string): string | undefined {
  if (!partial) return `the partial upload ${id} no longer exists`;
  if (!isCompleted(partial.status)) return `the partial upload ${id} is ${partial.status}`;
  return undefined;
}

export class FinalAssemblies {
  /** Finals waiting for a turn or running here (one entry each, however often they are asked for). */
  private readonly known = new Set<string>();
  private readonly waiting: Array<{ id: string; attempt: number }> = [];
  private running = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private idle: Array<() => void> = [];
  private closed = false;

  constructor(private readonly deps: AssemblyDeps) {}

  /** Assembles the final upload `id` as soon as a turn is free; a final already waiting or running here is not queued twice. */
  assemble(id: string, attempt = 0): void {
    if (this.closed || this.known.has(id)) return;
    this.known.add(id);
    this.waiting.push({ id, attempt });
    this.next();
  }

  /** Unfinished finals that nobody assembles (an instance died meanwhile, a retry was lost): queued. Returns how many. */
  async resumeIdle(): Promise<number> {
    const finals = await this.deps.uploads.finals.idle(IDLE_FINALS_PER_LOOK);
    const fresh = finals.filter((final) => !this.known.has(final.id));
    for (const final of fresh) this.assemble(final.id, final.assemblyAttempts);
    return fresh.length;
  }

  /** Resolves once nothing waits or runs here (a retry planned for later does not count). */
  settled(): Promise<void> {
    if (this.known.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** No new attempt starts, and no retry is planned, after this (the server is closing). */
  close(): void {
    this.closed = true;
    this.waiting.length = 0;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private next(): void {
    while (this.running < this.deps.concurrency && this.waiting.length > 0) {
      const { id, attempt } = this.waiting.shift()!;
      this.running++;
      void this.attempt(id)
        .catch((error: unknown) => {
          this.deps.log.error({ err: asError(error), uploadId: id }, 'final upload: the assembly failed unexpectedly');
          return 'retry' as const;
        })
        .then((outcome) => {
          this.running--;
          this.known.delete(id);
          if (outcome === 'retry') this.retryLater(id, attempt);
          this.next();
          if (this.known.size === 0) for (const resolve of this.idle.splice(0)) resolve();
        });
    }
  }

  private retryLater(id: string, attempt: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.assemble(id, attempt + 1);
    }, retryDelayMs(attempt));
    timer.unref();
    this.timers.add(timer);
  }

  /** One attempt under the final's lock: 'done' (assembled, given up, or nothing left to do), or 'retry'. */
  private async attempt(id: string): Promise<'done' | 'retry'> {
    const { uploads, locker, log } = this.deps;
    const stop = new AbortController();
    const lock = locker.newLock(id);
    try {
      // The lock is wanted (a termination, another instance) or lost: stop between steps, go on later.
      await lock.lock(new AbortController().signal, () => stop.abort());
    } catch (error) {
      log.warn(
        { err: asError(error), uploadId: id },
        'final upload: could not take its lock (another instance is assembling it, or the database is down)',
      );
      return 'retry';
    }
    let final: FileUpload | undefined;
    try {
      final = await uploads.access.findForStorage(id);
      // Gone (its row pruned), no longer open (assembled, given up, terminated, expired), or not a final: done.
      if (!final || !isOpen(final.status) || final.concat !== 'final' || !final.concatPartials) return 'done';
      if (final.assemblyAttempts >= this.deps.maxAttempts) {
        return await this.failed(final, 'the attempts were used up', true);
      }
      const found = await uploads.finals.partialsOf(final);
      const partials: FileUpload[] = [];
      for (const partialId of final.concatPartials) {
        const partial = found.get(partialId);
        const unusable = unusablePartial(partial, partialId);
        if (unusable) return await this.failed(final, unusable, true);
        partials.push(partial!);
      }
      await this.deps.store.concatenate(final, partials, stop.signal);
      log.info({ uploadId: id, partials: partials.length }, 'final upload assembled');
      return 'done';
    } catch (error) {
      if (error instanceof AssemblyInterrupted) {
        log.info({ uploadId: id, reason: error.message }, 'final upload: assembly interrupted; it goes on later');
        return 'retry';
      }
      const failure = asError(error);
      if (!final) {
        log.error({ err: failure, uploadId: id }, `final upload could not be assembled: ${failureReason(error)}`);
        return 'retry';
      }
      return await this.failed(final, failureReason(error), false, failure);
    } finally {
      await lock.unlock().catch((error: unknown) => {
        log.warn({ err: asError(error), uploadId: id }, 'final upload: could not give its lock back');
      });
    }
  }

  /** Counts a failed attempt; a final given up has its storage removed. */
  private async failed(
    final: FileUpload,
    reason: string,
    permanent: boolean,
    error?: Error,
  ): Promise<'done' | 'retry'> {
    const { uploads, store, log, maxAttempts } = this.deps;
    const attempt = final.assemblyAttempts + 1;
    log.error(
      { err: error, uploadId: final.id, attempt, maxAttempts },
      `final upload could not be assembled: ${reason}`,
    );
    let status: Awaited<ReturnType<UploadService['finals']['recordFailedAttempt']>>;
    try {
      status = await uploads.finals.recordFailedAttempt(final, reason, maxAttempts, permanent);
    } catch (recording) {
      // Nothing recorded (the database is down, most likely): the attempt does not count; try again later.
      log.warn({ err: asError(recording), uploadId: final.id }, 'final upload: could not record the failed attempt');
      return 'retry';
    }
    if (status === 'given_up') {
      log.error({ uploadId: final.id, attempts: attempt }, `final upload given up: ${reason}`);
      await store.abandon(final);
      return 'done';
    }
    // undefined: it is no longer open (rejected for its digest, terminated meanwhile): nothing more to do.
    return status === 'failed' ? 'retry' : 'done';
  }
}
