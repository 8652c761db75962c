/**
 * Reads a PATCH body chunk by chunk, for both stores, and decides when reading ends:
 * - the body ends (`complete`);
 * - the client goes away (`cut`): what arrived is kept, as after any network cut;
 * - another request wants the upload (`stop` aborts): a body that is still flowing is read on for up to
 *   STOP_DRAIN_MS (it may well finish and win), one that pauses for STOP_IDLE_MS (a dead connection the server has
 *   not noticed yet, typically: its client reconnected) ends at once; what arrived is kept;
 * - the body stalls (`stalled`): once the time spent waiting for the client adds up to the stall window
 *   (UPLOAD_STALL_TIMEOUT) and fewer than UPLOAD_MIN_RATE × window bytes came in that time. Only time spent
 *   waiting for the client counts: while the writer waits for a part slot or for S3, the body is not read, and
 *   that is not the client's fault.
 * It also enforces the most bytes the body may bring (413 beyond), and computes the Upload-Checksum digest.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { payloadTooLarge } from '../errors.js';
import type { ExpectedChecksum } from './checksum.js';

/**
 * Thrown by a store once it has stored what a stalled body brought (`offset`): the DataStore's write() resolves
 * with an offset and cannot say why it ended early. The body writer (write.ts) answers with the stored offset, as
 * the stored bytes deserve, and the connection is closed (the rest of the body is not waited for).
 */
export class BodyStalled extends Error {
  override readonly name = 'BodyStalled';
  constructor(readonly offset: number) {
    super(`the request body stalled; ${offset} bytes of the upload are stored`);
  }
}

export interface StallRule {
  /** Bytes per second; 0 turns the rule off. */
  minRate: number;
  windowMs: number;
}

export interface BodyOptions {
  stall: StallRule;
  /** Aborted when another request wants the upload: reading ends as if the body had ended. */
  stop?: AbortSignal | undefined;
  /** The most bytes the body may bring (the rest of the upload's length); more is 413. */
  limit?: number | undefined;
  /** Upload-Checksum: the digest the whole body must have. */
  checksum?: ExpectedChecksum | undefined;
}

/** After a stop request: how long a flowing body may go on, and how long a pause ends it. */
const STOP_DRAIN_MS = 3_000;
const STOP_IDLE_MS = 500;

const TIMED_OUT = Symbol('timed out');
const STOPPED = Symbol('stopped');

/** A client that goes away mid-body: Node reports it as an error of the request stream. */
const isClientGone = (error: unknown): boolean => {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return (
    code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (error as Error | null)?.message === 'aborted'
  );
};

/** `promise`, or TIMED_OUT after `ms`, or STOPPED when `stop` aborts, whichever comes first. */
function race<T>(
  promise: Promise<T>,
  ms: number | undefined,
  stop: AbortSignal | undefined,
): Promise<T | typeof TIMED_OUT | typeof STOPPED> {
  if (stop?.aborted) return Promise.resolve(STOPPED);
  let timer: NodeJS.Timeout | undefined;
  let onStop: (() => void) | undefined;
  const contenders: Array<Promise<T | typeof TIMED_OUT | typeof STOPPED>> = [promise];
  if (ms !== undefined) {
    contenders.push(
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms));
      }),
    );
  }
  if (stop) {
    contenders.push(
      new Promise((resolve) => {
        onStop = () => resolve(STOPPED);
        stop.addEventListener('abort', onStop, { once: true });
      }),
    );
  }
  return Promise.race(contenders).finally(() => {
    clearTimeout(timer);
    if (onStop) stop?.removeEventListener('abort', onStop);
  });
}

export class BodyReader {
  /** The body ended: every byte the client sent was read. */
  complete = false;
  /** Reading stopped because the client sent too slowly. */
  stalled = false;
  /** The client went away, or another request took over: what arrived is kept. */
  cut = false;
  /** Bytes read. */
  received = 0;
  private readonly hash: Hash | undefined;

  constructor(
    private readonly source: Readable,
    private readonly options: BodyOptions,
  ) {
    this.hash = options.checksum && createHash(options.checksum.algorithm);
  }

  /** Upload-Checksum: true when there is none, or the whole body arrived and has the digest the client announced. */
  checksumMatches(): boolean {
    const { checksum } = this.options;
    if (!checksum) return true;
    return this.complete && this.hash!.digest().equals(checksum.digest);
  }

  async *chunks(): AsyncGenerator<Buffer> {
    // Stopping early must not destroy the body: it is the request itself, and the answer with what was stored
    // still has to go out on its connection (which is closed once it has).
    const iterator = this.source.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
    const { stall, stop, limit } = this.options;
    const needed = (stall.minRate * stall.windowMs) / 1000;
    let waited = 0;
    let windowBytes = 0;
    /** Set once a stop was asked for: reading ends by then at the latest, or at the first pause. */
    let drainUntil: number | undefined;
    for (;;) {
      if (drainUntil !== undefined && performance.now() >= drainUntil) {
        this.cut = true;
        return;
      }
      const pending = iterator.next();
      pending.catch(() => {});
      let result: IteratorResult<Buffer> | undefined;
      while (result === undefined) {
        const started = performance.now();
        const stallLeft = stall.minRate > 0 ? stall.windowMs - waited : Number.POSITIVE_INFINITY;
        const drainLeft =
          drainUntil === undefined ? Number.POSITIVE_INFINITY : Math.min(STOP_IDLE_MS, drainUntil - started);
        const timeout = Math.min(stallLeft, drainLeft);
        let outcome: IteratorResult<Buffer> | typeof TIMED_OUT | typeof STOPPED;
        try {
          outcome = await race(
            pending,
            Number.isFinite(timeout) ? timeout : undefined,
            drainUntil === undefined ? stop : undefined,
          );
        } catch (error) {
          if (!isClientGone(error)) throw error;
          this.cut = true;
          return;
        }
        if (outcome === STOPPED) {
          waited += performance.now() - started;
          drainUntil = performance.now() + STOP_DRAIN_MS;
          continue;
        }
        if (outcome === TIMED_OUT && drainLeft <= stallLeft) {
          // Asked to stop, and the body paused (or the drain ran out).
          this.cut = true;
          return;
        }
        waited = outcome === TIMED_OUT ? stall.windowMs : waited + performance.now() - started;
        if (stall.minRate > 0 && waited >= stall.windowMs) {
          // A whole window spent waiting for the client: was it worth it?
          const arrived = windowBytes + (outcome !== TIMED_OUT && !outcome.done ? outcome.value.length : 0);
          if (arrived < needed) {
            this.stalled = true;
            return;
          }
          waited = 0;
          windowBytes = 0;
        }
        if (outcome !== TIMED_OUT) result = outcome;
      }
      if (result.done) {
        this.complete = true;
        return;
      }
      const chunk = result.value;
      // "If the length of the upload exceeds the maximum ... the Server MUST respond with the 413" (and a body
      // past the upload's declared length is the same mistake).
      if (limit !== undefined && this.received + chunk.length > limit) {
        throw payloadTooLarge(`the body goes past the upload's length (at most ${limit} more bytes)`);
      }
      this.received += chunk.length;
      windowBytes += chunk.length;
      this.hash?.update(chunk);
      yield chunk;
    }
  }
}
