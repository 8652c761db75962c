/**
 * Each process buffers parts in a directory of its own under TMPDIR (default DATA_DIR/tmp), and owns it by an
 * exclusive flock(2) on `<dir>/owner.lock`, held from start to exit. At start a process removes the directories
 * whose lock it can take: their owner is dead, wherever it ran.
 *
 * Why a lock and not the pid in the name: processes sharing DATA_DIR may run in other PID namespaces (containers)
 * or on other hosts (a shared volume), where "no process has that pid here" says nothing. The kernel releases a
 * flock when the last descriptor of its open file is closed, which happens when the process dies however it
 * dies (kill -9 included): a dead process cannot keep it, a live one never loses it. flock works across
 * containers sharing a volume (one kernel) and, on NFS, is passed to the server as a lock.
 *
 * Node has no flock in core, and the npm packages that add it are native addons built at install (a compiler
 * and Node's headers). Instead the util-linux (or BusyBox) `flock` command locks a descriptor this process
 * opened and hands it: `flock -x -n 3` locks the open file the descriptor shares with ours and exits, and the
 * lock stays with that open file, held by our descriptor (opened close-on-exec, so no other child inherits it).
 * Without the command the directory is made unlocked, with the name older versions used, and no other process's
 * locked directory is judged.
 *
 * Names: `freight-<host>-<pid>-<random>.parts` (host and pid for the operator only). Older versions made
 * `freight-<host>-<pid>-<random>` without a lock; those, and directories whose creation was cut short, are removed
 * once nothing was added to or removed from them for a day.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { close, open } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const openFile = promisify(open);
const closeFile = promisify(close);

const LOCK_FILE = 'owner.lock';
/** A directory being made: it gets its lock before it gets a name another process would look at. */
const MAKING = '.freight-new-';
const OWNED = /^freight-[A-Za-z0-9._-]+-\d+-[0-9a-f]{8}\.parts$/;
/** Made by versions without the lock, or without the flock command. */
const UNLOCKED = /^freight-[A-Za-z0-9._-]+-\d+-[0-9a-f]{8}$/;
/** How long an unlocked directory must be untouched before it is taken for abandoned. */
export const UNLOCKED_IDLE_MS = 24 * 3_600_000;
/** flock -n never waits; this only bounds a command that hangs for another reason. */
const FLOCK_TIMEOUT_MS = 10_000;

type LockOutcome = 'locked' | 'held' | 'no-flock';

/** An exclusive flock on the open file of `fd`, without waiting. */
function flockDescriptor(fd: number): Promise<LockOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['-x', '-n', '3'], {
      stdio: ['ignore', 'ignore', 'pipe', fd],
      timeout: FLOCK_TIMEOUT_MS,
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') resolve('no-flock');
      else reject(error);
    });
    child.once('close', (code, signal) => {
      // flock -n: 1 when the lock is held elsewhere.
      if (code === 0) resolve('locked');
      else if (code === 1) resolve('held');
      else reject(new Error(`flock ended with ${signal ?? `exit code ${code}`}: ${stderr.trim()}`));
    });
  });
}

export interface ProcessTempDir {
  dir: string;
  /** false: no flock command here, so the directory is unprotected (and no locked directory was judged). */
  locked: boolean;
  /** Directories of dead processes removed at start. */
  reclaimed: string[];
  remove(): Promise<void>;
}

export async function processTempDir(base: string): Promise<ProcessTempDir> {
  await mkdir(base, { recursive: true });
  const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '_');
  const name = `freight-${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const making = path.join(base, `${MAKING}${randomBytes(8).toString('hex')}`);
  await mkdir(making);
  let fd: number | undefined;
  let dir: string;
  try {
    fd = await openFile(path.join(making, LOCK_FILE), 'a+');
    const outcome = await flockDescriptor(fd);
    if (outcome === 'held') throw new Error(`the new directory ${making} is locked by someone else`);
    if (outcome === 'no-flock') {
      await closeFile(fd);
      fd = undefined;
    }
    dir = path.join(base, fd === undefined ? name : `${name}.parts`);
    await rename(making, dir);
  } catch (error) {
    if (fd !== undefined) await closeFile(fd).catch(() => {});
    await rm(making, { recursive: true, force: true });
    throw error;
  }
  const reclaimed = await reclaim(base, path.basename(dir));
  const lock = fd;
  return {
    dir,
    locked: lock !== undefined,
    reclaimed,
    remove: async () => {
      await rm(dir, { recursive: true, force: true });
      if (lock !== undefined) await closeFile(lock).catch(() => {});
    },
  };
}

/** Removes the directories under `base` whose owners are dead (or, for unlocked ones, which were abandoned). */
async function reclaim(base: string, own: string): Promise<string[]> {
  const reclaimed: string[] = [];
  for (const name of await readdir(base)) {
    if (name === own) continue;
    const dir = path.join(base, name);
    const removed = OWNED.test(name)
      ? await removeIfOwnerDead(dir)
      : (UNLOCKED.test(name) || name.startsWith(MAKING)) && (await removeIfIdle(dir));
    if (removed) reclaimed.push(name);
  }
  return reclaimed;
}

/** Takes the directory's lock if nobody holds it (its owner died) and removes the directory under it. */
async function removeIfOwnerDead(dir: string): Promise<boolean> {
  let fd: number;
  try {
    // Writable: over NFS an exclusive flock becomes a write lock, which a read-only descriptor cannot take.
    fd = await openFile(path.join(dir, LOCK_FILE), 'r+');
  } catch (error) {
    // Directories are named only once locked: one without its lock file is being removed by another process
    // (or was, by one that died half-way).
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return removeIfIdle(dir);
    throw error;
  }
  try {
    if ((await flockDescriptor(fd)) !== 'locked') return false;
    await rm(dir, { recursive: true, force: true });
    return true;
  } finally {
    await closeFile(fd).catch(() => {});
  }
}

async function removeIfIdle(dir: string): Promise<boolean> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory() || Date.now() - info.mtimeMs < UNLOCKED_IDLE_MS) return false;
  await rm(dir, { recursive: true, force: true });
  return true;
}
