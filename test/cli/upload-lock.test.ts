/**
 * The lock of a file's resume state: one holder at a time, and never a holder that is gone (killed, a pid reused
 * by another process, a host that stopped touching its lock). Real files and real processes; the machine's
 * process table is only replaced to stand for another host.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  STALE_AFTER_MS,
  UploadLocks,
  osProcessTable,
  type LockAttempt,
  type LockHolder,
} from '../../src/cli/upload-lock.js';
import { eventually } from '../helpers/harness.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'freight-cli-lock-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

let n = 0;
const fresh = () => `${String(++n).padStart(2, '0')}${'f'.repeat(62)}`;

/** A pid that ran a moment ago and runs no more. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

async function writeLock(locks: UploadLocks, key: string, holder: Partial<LockHolder>, touched = new Date()) {
  const me = await osProcessTable.self();
  const record = { id: randomUUID(), ...me, file: '/elsewhere/big.iso', since: new Date().toISOString(), ...holder };
  await writeFile(locks.fileOf(key), JSON.stringify(record));
  await utimes(locks.fileOf(key), touched, touched);
}

const held = (attempt: LockAttempt) => (attempt.held ? 'held' : `busy: pid ${attempt.holder.pid}`);

describe('the upload lock', () => {
  test('one holder: a second attempt is told who holds it; after the release it is free again', async () => {
    const locks = new UploadLocks(dir);
    const key = fresh();
    const first = await locks.acquire(key, '/data/big.iso');
    expect(held(first)).toBe('held');
    const second = await locks.acquire(key, '/data/big.iso');
    expect(second).toMatchObject({
      held: false,
      holder: { pid: process.pid, host: os.hostname(), file: '/data/big.iso' },
    });
    if (first.held) await first.release();
    const third = await locks.acquire(key, '/data/big.iso');
    expect(held(third)).toBe('held');
    if (third.held) await third.release();
    // Nothing left behind: no lock, no draft.
    expect((await readdir(dir)).filter((name) => name.includes(key))).toEqual([]);
  });

  test('a holder that was killed (its pid runs no more) does not block: its lock is taken over at once', async () => {
    const locks = new UploadLocks(dir);
    const key = fresh();
    await writeLock(locks, key, { pid: await deadPid() });
    const attempt = await locks.acquire(key, '/data/big.iso');
    expect(held(attempt)).toBe('held');
    if (attempt.held) await attempt.release();
  });

  test.runIf(process.platform === 'linux')(
    "a pid that runs but is another process now (its start time differs from the lock's) does not block",
    async () => {
      const locks = new UploadLocks(dir);
      const key = fresh();
      await writeLock(locks, key, { pid: process.pid, startTicks: '1' });
      expect(held(await locks.acquire(key, '/data/big.iso'))).toBe('held');
    },
  );

  test('a holder on another host counts while it touches its lock, and not once it has stopped for STALE_AFTER_MS', async () => {
    const locks = new UploadLocks(dir);
    const key = fresh();
    await writeLock(locks, key, { host: 'another-host', pid: 1 });
    expect(held(await locks.acquire(key, '/data/big.iso'))).toBe('busy: pid 1');
    const stale = new Date(Date.now() - STALE_AFTER_MS - 5_000);
    await utimes(locks.fileOf(key), stale, stale);
    const attempt = await locks.acquire(key, '/data/big.iso');
    expect(held(attempt)).toBe('held');
    if (attempt.held) await attempt.release();
  });

  test('a holder keeps its lock touched (the heartbeat), so that it never looks stale from another host', async () => {
    const locks = new UploadLocks(dir, { heartbeatMs: 50 });
    const key = fresh();
    const attempt = await locks.acquire(key, '/data/big.iso');
    if (!attempt.held) throw new Error('not held');
    const old = new Date(Date.now() - STALE_AFTER_MS - 5_000);
    await utimes(locks.fileOf(key), old, old);
    const elsewhere = new UploadLocks(dir, {
      processes: { ...osProcessTable, self: async () => ({ ...(await osProcessTable.self()), host: 'another-host' }) },
    });
    // The next heartbeat touches it again (bounded: a few heartbeats).
    await eventually(
      async () => ((await stat(locks.fileOf(key))).mtimeMs > old.getTime() + 1_000 ? true : undefined),
      2_000,
    );
    expect(held(await elsewhere.acquire(key, '/data/big.iso'))).toBe(`busy: pid ${process.pid}`);
    await attempt.release();
  });

  test("runs racing for a dead holder's lock: exactly one of them gets it", async () => {
    const key = fresh();
    const locks = new UploadLocks(dir);
    await writeLock(locks, key, { pid: await deadPid() });
    const attempts = await Promise.all(Array.from({ length: 8 }, () => new UploadLocks(dir).acquire(key, '/f')));
    expect(attempts.filter((attempt) => attempt.held)).toHaveLength(1);
    for (const attempt of attempts) if (attempt.held) await attempt.release();
  });

  test('a release removes only its own lock: one taken over meanwhile stays', async () => {
    const locks = new UploadLocks(dir);
    const key = fresh();
    const mine = await locks.acquire(key, '/f');
    if (!mine.held) throw new Error('not held');
    await rm(locks.fileOf(key));
    await writeLock(locks, key, { host: 'another-host', pid: 7 });
    await mine.release();
    expect(held(await locks.acquire(key, '/f'))).toBe('busy: pid 7');
  });
});
