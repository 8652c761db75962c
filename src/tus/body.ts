/**
 * Reads a PATCH body chunk by chunk and notices when it stalls: once the time spent waiting for the client adds
 * up to the stall window (UPLOAD_STALL_TIMEOUT) and fewer than UPLOAD_MIN_RATE × window bytes came in that
 * time, reading stops as if the body had ended. The writer then stores what arrived and the request is
 * answered (and its connection closed), so the client resumes from there as after any cut.
 *
 * Only time spent waiting for the client counts: while the writer waits for a part slot or for S3, the body
 * is not read, and that is not the client's fault.
 */
import type { Readable } from 'node:stream';

/**
 * Thrown by a store once it has stored what a stalled body brought (`offset`): @tus/server only answers a PATCH
 * whose store returns early when the body ends, which a trickling client's never does, but it answers at once
 * when the store throws. The hook turns this into the 204 the stored bytes deserve (src/tus/server.ts).
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

const TIMED_OUT = Symbol('timed out');

function waitAtMost<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms));
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class BodyReader {
  /** True when reading stopped because the client sent too slowly, not because the body ended. */
  stalled = false;

  constructor(
    private readonly source: Readable,
    private readonly rule: StallRule,
  ) {}

  async *chunks(): AsyncGenerator<Buffer> {
    // Stopping early must not destroy the body: @tus/server pipes it, and a destroyed stream would fail the
    // request (premature close) that is meant to be answered with what was stored.
    const iterator = this.source.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
    const { minRate, windowMs } = this.rule;
    const needed = (minRate * windowMs) / 1000;
    let waited = 0;
    let received = 0;
    for (;;) {
      const pending = iterator.next();
      let result: IteratorResult<Buffer> | typeof TIMED_OUT;
      for (;;) {
        const started = performance.now();
        result = minRate > 0 ? await waitAtMost(pending, windowMs - waited) : await pending;
        waited = result === TIMED_OUT ? windowMs : waited + performance.now() - started;
        if (waited >= windowMs) {
          // A whole window spent waiting for the client: was it worth it?
          const arrived = received + (result !== TIMED_OUT && !result.done ? result.value.length : 0);
          if (minRate > 0 && arrived < needed) {
            pending.catch(() => {});
            this.stalled = true;
            return;
          }
          waited = 0;
          received = 0;
        }
        if (result !== TIMED_OUT) break;
      }
      if (result.done) return;
      received += result.value.length;
      yield result.value;
    }
  }
}
