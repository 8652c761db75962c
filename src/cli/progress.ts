/**
 * Progress of each file: bytes, speed and time left. On a terminal, one bar per file, redrawn in place a few
 * times a second; elsewhere (a pipe, a log, a test) a plain line per file every few seconds while it moves and
 * when it ends, so that nothing floods a log.
 */
import { formatBytes } from '../config/units.js';

/** Speed over the last few seconds, so a stall shows at once and an old burst does not linger. */
const SPEED_WINDOW_MS = 5_000;
const TTY_REDRAW_MS = 200;
const LOG_EVERY_MS = 2_000;
const BAR_WIDTH = 24;

export type FileState =
  | 'waiting'
  | 'uploading'
  | 'retrying'
  | 'completed'
  | 'awaiting approval'
  | 'failed'
  | 'interrupted';

/** A file whose bytes are all on the server. */
const STORED: ReadonlySet<FileState> = new Set(['completed', 'awaiting approval']);
/** States a file does not leave in this run. */
const ENDED: ReadonlySet<FileState> = new Set([...STORED, 'failed', 'interrupted']);

export class FileProgress {
  state: FileState = 'waiting';
  bytes = 0;
  note = '';
  /** Not drawn (its failure is told once for the whole run). */
  hidden = false;
  private readonly samples: Array<[time: number, bytes: number]> = [];

  constructor(
    readonly name: string,
    readonly size: number,
  ) {}

  update(bytes: number, now = Date.now()): void {
    this.bytes = bytes;
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[0]![0] > SPEED_WINDOW_MS) this.samples.shift();
  }

  /** Bytes per second over the window; 0 until two samples a moment apart exist. */
  speed(now = Date.now()): number {
    const first = this.samples[0];
    if (!first || now - first[0] < 250) return 0;
    return Math.max(0, (this.bytes - first[1]) / ((now - first[0]) / 1000));
  }

  /** Seconds left at the current speed; undefined when it cannot be told. */
  eta(now = Date.now()): number | undefined {
    const speed = this.speed(now);
    return speed > 0 ? (this.size - this.bytes) / speed : undefined;
  }
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

/** One line for a file: "name  [#####-----]  45%  1.2 GiB / 2.6 GiB  85.1 MiB/s  ETA 00:17". */
export function progressLine(file: FileProgress, withBar: boolean, now = Date.now()): string {
  const fraction = file.size > 0 ? Math.min(1, file.bytes / file.size) : STORED.has(file.state) ? 1 : 0;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = withBar ? `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ` : '';
  const amount = `${formatBytes(file.bytes)} / ${formatBytes(file.size)}`;
  let tail: string;
  if (file.state === 'uploading') {
    tail = `${formatBytes(Math.round(file.speed(now)))}/s  ETA ${formatDuration(file.eta(now))}`;
  } else {
    tail = file.note ? `${file.state}: ${file.note}` : file.state;
  }
  return `${file.name}  ${bar}${percent}  ${amount}  ${tail}`;
}

export interface ProgressOutput {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

/** Draws every file's progress on `out` (stderr), as bars on a terminal or as occasional lines elsewhere. */
export class ProgressBoard {
  private timer: NodeJS.Timeout | undefined;
  private drawnLines = 0;
  private readonly lastLogged = new Map<FileProgress, { at: number; state: FileState }>();

  constructor(
    readonly files: FileProgress[],
    private readonly out: ProgressOutput,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.draw(), this.out.isTTY ? TTY_REDRAW_MS : 250);
    this.timer.unref();
    this.draw();
  }

  stop(): void {
    clearInterval(this.timer);
    this.draw();
  }

  draw(now = Date.now()): void {
    if (this.out.isTTY) this.drawBars(now);
    else this.logLines(now);
  }

  private drawBars(now: number): void {
    const width = Math.max(40, (this.out.columns ?? 100) - 1);
    const lines = this.files
      .filter((file) => !file.hidden)
      .map((file) => progressLine(file, true, now).slice(0, width));
    // Back up over what was drawn before (start of the line n lines up), then rewrite each line and clear its rest.
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}F` : '';
    this.out.write(`${up}${lines.map((line) => `${line}\x1b[K\n`).join('')}`);
    this.drawnLines = lines.length;
  }

  private logLines(now: number): void {
    for (const file of this.files) {
      if (file.hidden) continue;
      const last = this.lastLogged.get(file);
      const entered = last?.state !== file.state && (ENDED.has(file.state) || file.state === 'retrying');
      const due = file.state === 'uploading' && file.bytes > 0 && now - (last?.at ?? 0) >= LOG_EVERY_MS;
      if (entered || due) {
        this.out.write(`${progressLine(file, false, now)}\n`);
        this.lastLogged.set(file, { at: now, state: file.state });
      }
    }
  }
}
