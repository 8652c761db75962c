/**
 * One `freight upload` run per file at a time: a lock beside the file's resume state (`<fingerprint>.lock`), so
 * that a second run of the same file does not read and write the same state, or start a second upload, while the
 * first is running. The second run leaves the file alone and says who holds it.
 *
 * A lock names its holder: pid, host, and on Linux the boot, the pid namespace and the process's start time (from
 * /proc), so that a killed holder (kill -9, a crash, a power cut) never blocks the file: a lock whose process is
 * gone, or whose pid now belongs to another process, is taken over at once. Where the holder cannot be looked up
 * (another host sharing the state directory, another pid namespace, no /proc), the holder's heartbeat decides: a
 * live holder touches its lock every HEARTBEAT_MS, and a lock untouched for STALE_AFTER_MS is taken over.
 *
 * Taking a lock is one atomic link(2) of a complete record (never a half-written file) that carries a random id.
 * A dead holder's lock is removed under a takeover lock, and only if it is still the one judged dead (its text,
 * unique by that id; an inode number can be reused at once), so runs racing beside a dead lock end with one
 * holder.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, readlink, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import path from 'node:path';

/** How often a holder touches its lock, and how long an untouched lock of a holder out of sight stays valid. */
export const HEARTBEAT_MS = 10_000;
export const STALE_AFTER_MS = 60_000;
/** A takeover is held for a read and an unlink: one untouched this long was left by a run killed meanwhile. */
const TAKEOVER_STALE_MS = 10_000;
const TAKEOVER_WAIT_MS = 20;
/** Rounds of an acquisition: enough for any number of racing runs to finish a takeover at TAKEOVER_WAIT_MS. */
const MAX_ROUNDS = 500;

/** Who holds a lock, as written in it. */
export interface LockHolder {
  /** This lock's own random id: what tells it from the lock that was there before. */
  id: string;
  pid: number;
  host: string;
  /** Linux: /proc/sys/kernel/random/boot_id (a pid of another boot is another process). */
  boot?: string;
  /** Linux: the pid namespace (a pid is only meaningful inside its namespace: containers). */
  pidNamespace?: string;
  /** Linux: the process's start time in clock ticks since boot (a reused pid has another). */
  startTicks?: string;
  /** The local file being uploaded, for the message a second run prints. */
  file: string;
  since: string;
}

export type LockAttempt = { held: true; release(): Promise<void> } | { held: false; holder: LockHolder };

export type ProcessIdentity = Omit<LockHolder, 'id' | 'file' | 'since'>;

/** What this machine can tell about a process: its identity fields, and whether a pid still runs. */
export interface ProcessTable {
  self(): Promise<ProcessIdentity>;
  /** A pid's start ticks in this namespace: undefined when no such process runs; null when it cannot be told. */
  startTicks(pid: number): Promise<string | undefined | null>;
}

const readText = (file: string) => readFile(file, 'utf8').then((text) => text.trim());

/**
 * Field 22 of /proc/<pid>/stat (starttime). The name in field 2 may hold spaces and parentheses: fields are counted
 * after the last ')'.
 */
async function procStartTicks(pid: number): Promise<string | undefined | null> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    return null;
  }
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[19] ?? null;
}

/** No process with this pid (kill -0 answers ESRCH); EPERM means it runs as someone else. */
function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export const osProcessTable: ProcessTable = {
  async self() {
    const linux = process.platform === 'linux';
    const [boot, pidNamespace, startTicks] = linux
      ? await Promise.all([
          readText('/proc/sys/kernel/random/boot_id').catch(() => undefined),
          readlink('/proc/self/ns/pid').catch(() => undefined),
          procStartTicks(process.pid).then((ticks) => ticks ?? undefined),
        ])
      : [undefined, undefined, undefined];
    return { pid: process.pid, host: os.hostname(), boot, pidNamespace, startTicks };
  },
  async startTicks(pid) {
    if (process.platform === 'linux') return procStartTicks(pid);
    return pidRuns(pid) ? null : undefined;
  },
};

/** Whether `holder` is certainly gone: its process ended, or its pid is another process's now. */
async function holderIsGone(
  holder: LockHolder,
  me: ProcessIdentity,
  touchedMs: number,
  now: number,
  processes: ProcessTable,
  staleAfterMs: number,
): Promise<boolean> {
  const sameMachine = holder.host === me.host && holder.boot === me.boot && holder.pidNamespace === me.pidNamespace;
  if (sameMachine) {
    const ticks = await processes.startTicks(holder.pid);
    if (ticks === undefined) return true;
    if (ticks !== null && holder.startTicks !== undefined) return ticks !== holder.startTicks;
  }
  // Out of sight (or a pid that runs but cannot be told apart): only the heartbeat says it is alive.
  return now - touchedMs > staleAfterMs;
}

export interface UploadLocksOptions {
  processes?: ProcessTable;
  now?: () => number;
  heartbeatMs?: number;
}

export class UploadLocks {
  private readonly processes: ProcessTable;
  private readonly now: () => number;
  private readonly heartbeatMs: number;

  constructor(
    readonly dir: string,
    options: UploadLocksOptions = {},
  ) {
    this.processes = options.processes ?? osProcessTable;
    this.now = options.now ?? Date.now;
    this.heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  }

  fileOf(fingerprint: string): string {
    return path.join(this.dir, `${fingerprint}.lock`);
  }

  /** Takes the lock of `fingerprint` for `file`, or tells who holds it. Never waits for a live holder. */
  async acquire(fingerprint: string, file: string): Promise<LockAttempt> {
    const lockFile = this.fileOf(fingerprint);
    const me = await this.processes.self();
    const record: LockHolder = { id: randomUUID(), ...me, file, since: new Date(this.now()).toISOString() };
    const draft = path.join(this.dir, `.${fingerprint}.${randomUUID()}.lock`);
    const text = `${JSON.stringify(record)}\n`;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFile(draft, text, { mode: 0o600 });
    try {
      // Each round takes the lock, finds a live holder, or removes a dead one (or waits for another run doing so).
      for (let round = 0; round < MAX_ROUNDS; round++) {
        if (await linked(draft, lockFile)) return { held: true, release: this.hold(lockFile, record.id) };
        const found = await this.inspect(lockFile);
        if (!found) continue; // released meanwhile
        if (!(await this.gone(found, me, STALE_AFTER_MS))) return { held: false, holder: found.holder };
        await this.removeDead(lockFile, found.text, draft, text, me);
      }
      throw new Error(`could not take the lock ${lockFile}: it kept changing hands`);
    } finally {
      await unlink(draft).catch(() => {});
    }
  }

  private gone(found: { holder: LockHolder; touchedMs: number }, me: ProcessIdentity, staleAfterMs: number) {
    return holderIsGone(found.holder, me, found.touchedMs, this.now(), this.processes, staleAfterMs);
  }

  /** The holder written in a lock (and its text) and when it was last touched; undefined if there is no lock. */
  private async inspect(
    lockFile: string,
  ): Promise<{ holder: LockHolder; text: string; touchedMs: number } | undefined> {
    try {
      const info = await stat(lockFile);
      const text = await readFile(lockFile, 'utf8');
      return { holder: parseHolder(text, info.mtime), text, touchedMs: info.mtimeMs };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /**
   * Removes a dead holder's lock (its text `dead`, unique by the lock's id), one run at a time: under
   * `<lock>.takeover`, taken like the lock (our draft linked there), the lock is read again and removed only if it
   * is still the dead one. Nobody else removes a lock and a lock is only created where there is none, so what was
   * read is what is removed: runs racing for a dead lock end with one holder. The takeover is held for one read
   * and one unlink; a run that finds it taken waits a moment, unless its holder is gone (killed in that instant).
   */
  private async removeDead(lockFile: string, dead: string, draft: string, mine: string, me: ProcessIdentity) {
    const takeover = `${lockFile}.takeover`;
    if (!(await linked(draft, takeover))) {
      const found = await this.inspect(takeover);
      if (found && (await this.gone(found, me, TAKEOVER_STALE_MS))) await removeIfStill(takeover, found.text);
      else await sleep(TAKEOVER_WAIT_MS);
      return;
    }
    try {
      await removeIfStill(lockFile, dead);
    } finally {
      await removeIfStill(takeover, mine);
    }
  }

  /** Keeps the lock touched while held; the release removes it if it is still this one (id `id`). */
  private hold(lockFile: string, id: string): () => Promise<void> {
    const heartbeat = setInterval(() => {
      const now = new Date(this.now());
      void utimes(lockFile, now, now).catch(() => {});
    }, this.heartbeatMs);
    heartbeat.unref();
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      const found = await this.inspect(lockFile);
      if (found?.holder.id === id) await unlink(lockFile).catch(() => {});
    };
  }
}

/** A lock's record; one this program did not write (link(2) never shows a half-written one) is an unknown holder. */
function parseHolder(text: string, touched: Date): LockHolder {
  try {
    const holder = JSON.parse(text) as Partial<LockHolder>;
    if (typeof holder.id === 'string' && typeof holder.pid === 'number' && typeof holder.host === 'string')
      return holder as LockHolder;
  } catch {}
  // Its heartbeat alone decides (an unknown host is never looked up).
  return {
    id: `unknown:${text.length}:${touched.getTime()}`,
    pid: 0,
    host: '?',
    file: '?',
    since: touched.toISOString(),
  };
}

/** "pid 1234 on build-7 since 2026-05-01T10:00:00.000Z": who holds a lock, for a person. */
export function describeHolder(holder: LockHolder): string {
  return `pid ${holder.pid} on ${holder.host}, since ${holder.since}`;
}

/** link(2), which fails if `target` exists: true when `target` is now `source`'s. */
async function linked(source: string, target: string): Promise<boolean> {
  try {
    await link(source, target);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Removes `file` if it still holds `text`. For a lock only the takeover's holder does this, so nothing changes in
 * between; for a takeover left by a dead run, only a run killed inside another takeover could slip in.
 */
async function removeIfStill(file: string, text: string): Promise<void> {
  try {
    if ((await readFile(file, 'utf8')) === text) await unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
