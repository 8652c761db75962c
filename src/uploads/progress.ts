/**
 * How often upload.progress events are written (WEBHOOK_PROGRESS_INTERVAL): at most one per upload per interval,
 * by the clock of the process that stores the upload's bytes. The outbox coalesces what is written
 * (UploadRepository.reportProgress: a newer progress replaces an undelivered older one), so a slow receiver
 * never has more than one waiting per upload however long the upload runs.
 *
 * The last report of each upload is remembered here, in this process: one writer stores an upload's bytes at a
 * time, so this is where its progress happens; should another instance take the upload over, it may report once
 * sooner than the interval. Only uploads reported within the last interval are remembered (older entries decide
 * nothing), so memory stays bounded by the uploads that progress at once.
 */
export class ProgressThrottle {
  private readonly last = new Map<string, number>();

  constructor(
    /** 0: never. */
    private readonly intervalMs: number,
    private readonly now: () => Date,
  ) {}

  /** Whether the upload's progress is reported now; if so, it is remembered as reported. */
  due(id: string): boolean {
    if (this.intervalMs <= 0) return false;
    const now = this.now().getTime();
    const last = this.last.get(id);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.last.set(id, now);
    if (this.last.size > 1024) this.forgetOlderThan(now - this.intervalMs);
    return true;
  }

  /** The upload will make no more progress (completed or ended). */
  forget(id: string): void {
    this.last.delete(id);
  }

  get remembered(): number {
    return this.last.size;
  }

  private forgetOlderThan(limit: number): void {
    for (const [id, at] of this.last) if (at <= limit) this.last.delete(id);
  }
}
