/**
 * How many part URLs the direct client asks Freight to sign at once. Each sign request is a round trip and work
 * on the server, so batches grow as the upload goes (2 GiB in 8 MiB parts: 4 requests, not 8; 5 TB: tens, not
 * hundreds). A URL is only good for its lifetime (PRESIGN_EXPIRES), though, and a batch is signed while the one
 * before it is being sent, so its last URL is used about (that batch + this one) / rate after signing: batches
 * only grow while that stays within half the lifetime at the rate the parts have been going.
 */

/** The API's bound on the parts of one sign request (POST /api/multipart/:id/sign): direct/service.ts's too. */
export const MAX_SIGN_BATCH = 1000;
/** Each batch is at most this many times the one before. */
export const SIGN_BATCH_GROWTH = 4;

export interface BatchState {
  /** The size of the batch being sent while the next one is signed. */
  current: number;
  /** Parts sent per second so far; undefined while it cannot be told (every worker still on its first part). */
  partsPerSecond: number | undefined;
  /** How long the URLs of the last batch stay valid from when they were signed; NaN when the answer did not say. */
  lifetimeMs: number;
  /** The smallest batch worth a request: enough to keep every worker busy. */
  least: number;
}

/** The size of the next batch (before the parts left to send cut it). */
export function nextSignBatch({ current, partsPerSecond, lifetimeMs, least }: BatchState): number {
  if (partsPerSecond === undefined || !Number.isFinite(lifetimeMs)) return current;
  const usedInTime = Math.floor((partsPerSecond * lifetimeMs) / 2000) - current;
  return Math.max(least, Math.min(current * SIGN_BATCH_GROWTH, MAX_SIGN_BATCH, usedInTime));
}

/**
 * The rate the parts are going: parts handed to the workers, counted from the moment every worker had one (the
 * first `workers` go out at once, so they say nothing about the rate).
 */
export class PartRate {
  private handedOut = 0;
  private pacedSince: number | undefined;

  constructor(
    private readonly workers: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {}

  handOut(): void {
    this.handedOut++;
    if (this.handedOut === this.workers) this.pacedSince = this.now();
  }

  /** Parts per second since every worker was busy; undefined until one part more has gone. */
  perSecond(): number | undefined {
    if (this.pacedSince === undefined || this.handedOut <= this.workers) return undefined;
    const seconds = (this.now() - this.pacedSince) / 1000;
    return seconds > 0 ? (this.handedOut - this.workers) / seconds : undefined;
  }
}
