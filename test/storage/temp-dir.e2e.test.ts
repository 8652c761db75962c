/**
 * Who owns a part directory: real `node` processes sharing one TMPDIR, as instances sharing DATA_DIR do. One of
 * them looks as a process of another PID namespace would (its directory names a pid that does not exist here, as
 * a container's pids do not); a second process started beside it must leave its directory alone while it lives,
 * and a third must remove it once it was killed with kill -9. Directories without a lock (older versions) are
 * removed only once untouched for a day.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { repoRoot } from '../../scripts/services.js';
import { UNLOCKED_IDLE_MS, processTempDir } from '../../src/storage/temp-dir.js';

/** Built by test/global-setup.ts. */
const MODULE = pathToFileURL(path.join(repoRoot(), 'dist', 'src', 'storage', 'temp-dir.js')).href;
/** Takes its part directory under FREIGHT_TEMP_BASE as the server does, says where, and lives until killed. */
const OWNER = `
import { processTempDir } from ${JSON.stringify(MODULE)};
const taken = await processTempDir(process.env.FREIGHT_TEMP_BASE);
console.log(JSON.stringify({ dir: taken.dir, locked: taken.locked, reclaimed: taken.reclaimed }));
setInterval(() => {}, 1 << 30);
`;
/** Past Linux's largest pid (4194304): no process has it in this namespace, as none has another namespace's. */
const INVISIBLE_PID = 4_194_305;
const START_TIMEOUT_MS = 20_000;

interface Owner {
  child: ChildProcess;
  dir: string;
  locked: boolean;
  reclaimed: string[];
}

let base: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'freight-temp-base-'));
});
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await rm(base, { recursive: true, force: true });
});

async function startOwner(): Promise<Owner> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', OWNER], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', FREIGHT_TEMP_BASE: base },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  const first = new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the owner process exited (${code}) before saying its directory`)));
    setTimeout(
      () => reject(new Error(`no directory from the owner process within ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    );
  });
  return { child, ...(JSON.parse(await first) as Omit<Owner, 'child'>) };
}

const killed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

describe('part directories shared between processes', () => {
  test('a live owner in another PID namespace keeps its directory; after kill -9 the next process removes it', async () => {
    const first = await startOwner();
    expect(first.locked).toBe(true);
    // As seen from here, the owner of this directory is a process of another PID namespace: its pid is not ours.
    const moved = path.join(
      base,
      path.basename(first.dir).replace(/-\d+-([0-9a-f]{8})\.parts$/, `-${INVISIBLE_PID}-$1.parts`),
    );
    await rename(first.dir, moved);
    await writeFile(path.join(moved, 'part-1'), 'bytes on their way to S3');

    const second = await startOwner();
    expect(second.reclaimed).toEqual([]);
    expect(existsSync(path.join(moved, 'part-1'))).toBe(true);

    await killed(first.child);
    const third = await startOwner();
    expect(third.reclaimed).toEqual([path.basename(moved)]);
    expect(existsSync(moved)).toBe(false);
    // The second process still runs: its directory stays.
    expect(existsSync(second.dir)).toBe(true);
    expect((await readdir(base)).sort()).toEqual([path.basename(second.dir), path.basename(third.dir)].sort());
  });

  test('directories without a lock (older versions, a creation cut short) go once untouched for a day', async () => {
    const legacy = path.join(base, `freight-${os.hostname()}-${INVISIBLE_PID}-0123abcd`);
    const fresh = path.join(base, `freight-${os.hostname()}-${INVISIBLE_PID}-4567cdef`);
    const cutShort = path.join(base, '.freight-new-00112233445566778899');
    for (const dir of [legacy, fresh, cutShort]) await mkdir(dir);
    const dayAgo = (Date.now() - UNLOCKED_IDLE_MS - 60_000) / 1000;
    await utimes(legacy, dayAgo, dayAgo);
    await utimes(cutShort, dayAgo, dayAgo);

    const own = await processTempDir(base);
    try {
      expect(own.reclaimed.sort()).toEqual([path.basename(cutShort), path.basename(legacy)].sort());
      expect([existsSync(legacy), existsSync(fresh), existsSync(cutShort)]).toEqual([false, true, false]);
    } finally {
      await own.remove();
      await rm(fresh, { recursive: true, force: true });
    }
  });
});
