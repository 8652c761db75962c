/**
 * Each process buffers parts in a directory of its own under TMPDIR (default DATA_DIR/tmp), named after its
 * host and pid (and a random suffix: tests run several apps in one process): instances sharing DATA_DIR never
 * touch each other's files, and at start a process removes the directories of processes of its host that no
 * longer run (a crash leaves its part files behind).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const PREFIX = 'freight-';

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

export interface ProcessTempDir {
  dir: string;
  /** Directories of dead processes removed at start. */
  reclaimed: string[];
  remove(): Promise<void>;
}

export async function processTempDir(base: string): Promise<ProcessTempDir> {
  const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '_');
  const dir = path.join(base, `${PREFIX}${host}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(base, { recursive: true });
  const reclaimed: string[] = [];
  for (const name of await readdir(base)) {
    const match = new RegExp(`^${PREFIX}${host.replace(/\./g, '\\.')}-(\\d+)-[0-9a-f]+$`).exec(name);
    const pid = match ? Number(match[1]) : undefined;
    if (pid === undefined || pid === process.pid || isRunning(pid)) continue;
    await rm(path.join(base, name), { recursive: true, force: true });
    reclaimed.push(name);
  }
  await mkdir(dir, { recursive: true });
  return { dir, reclaimed, remove: () => rm(dir, { recursive: true, force: true }) };
}
