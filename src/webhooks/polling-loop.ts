/**
 * What the webhook deliverer and the approval loop share: a loop every instance runs from start to close, that
 * does one round of due work at a time, and pauses POLL_MS when a round found less than a full batch. stop()
 * ends it: the pause ends at once, and `stopping` tells a round in flight to cut its work short.
 */

/** Items claimed (and worked on concurrently) in one round. */
export const BATCH = 16;
/** How often an idle loop looks for due work. */
const POLL_MS = 1_000;

export abstract class PollingLoop {
  protected readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  /** One round: the items it found due (up to BATCH), each worked on. Throws when it could not look. */
  protected abstract round(): Promise<number>;
  /** A round that could not look for work (the database is away): told, and tried again after a pause. */
  protected abstract roundFailed(error: unknown): void;

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      let found = 0;
      try {
        found = await this.round();
      } catch (error) {
        this.roundFailed(error);
      }
      if (found < BATCH) await this.pause(POLL_MS);
    }
  }

  private pause(ms: number): Promise<void> {
    // Stopped while a round was in flight: no pause before the loop sees it.
    if (this.stopping.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
