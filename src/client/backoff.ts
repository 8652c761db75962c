/**
 * Retries with exponential backoff and full jitter: before retry n (0-based) wait a uniformly random time in
 * [0, min(cap, base × 2^n)) (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
 * Full jitter spreads the retries of many parts that failed together instead of sending them back in lockstep.
 */
export interface BackoffOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  baseMs: number;
  capMs: number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_BACKOFF: BackoffOptions = { attempts: 6, baseMs: 500, capMs: 30_000 };

export function backoffDelay(retry: number, options: Pick<BackoffOptions, 'baseMs' | 'capMs' | 'random'>): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** retry);
  return Math.floor((options.random ?? Math.random)() * ceiling);
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `attempt` until it succeeds, `retryable` says no, or the attempts run out; rethrows the last error. */
export async function retrying<T>(
  attempt: (n: number) => Promise<T>,
  options: BackoffOptions & { retryable?: (error: unknown) => boolean; signal?: AbortSignal | undefined },
): Promise<T> {
  const sleep = options.sleep ?? defaultSleep;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      const last = n + 1 >= options.attempts;
      if (last || options.signal?.aborted || (options.retryable && !options.retryable(error))) throw error;
      await sleep(backoffDelay(n, options));
    }
  }
}
