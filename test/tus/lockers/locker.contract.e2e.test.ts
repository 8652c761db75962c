/**
 * The locker contract: what @tus/server asks of any Locker, run against its MemoryLocker (the reference) and against
 * Freight's MemoryLocker and PostgresLocker; then what only a locker shared by several instances promises (two PostgresLockers on one
 * database standing in for two servers).
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { MemoryLocker as TusServerMemoryLocker } from '@tus/server';
import { ERRORS, type Locker } from '@tus/utils';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import type { UploadLocker } from '../../../src/tus/lockers/locker.js';
import { MemoryLocker } from '../../../src/tus/lockers/memory-locker.js';
import { PostgresLocker, type PostgresLockerOptions } from '../../../src/tus/lockers/postgres-locker.js';
import { uploadLockKey } from '../../../src/db/ids.js';
import { testDatabaseUrl } from '../../helpers/file-database.js';

// Each case settles in well under a second: a broken locker should fail a case in seconds, not hang it for the
// suite's default two minutes.
vi.setConfig({ testTimeout: 10_000 });

/** A stop signal that never fires. */
const noStop = new AbortController().signal;
const ignore = () => {};
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A requestRelease to hand a lock: `called` resolves at its first call, `nextCall()` at the next one from now. */
function releaseRequests() {
  let waiting: (() => void)[] = [];
  const nextCall = () => new Promise<void>((resolve) => waiting.push(resolve));
  const called = nextCall();
  const fn = () => {
    for (const resolve of waiting) resolve();
    waiting = [];
  };
  return { fn, called, nextCall };
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  await Promise.all(cleanups.map((cleanup) => cleanup()));
});

async function postgresLocker(options: Partial<PostgresLockerOptions> = {}): Promise<PostgresLocker> {
  const locker = await PostgresLocker.create({
    url: testDatabaseUrl(),
    queryTimeoutMs: 2_000,
    log: { warn: ignore, error: ignore },
    ...options,
  });
  cleanups.push(() => locker.close());
  return locker;
}

describe.each<[string, (acquireTimeoutMs: number) => Promise<Locker>]>([
  // @tus/server's own, the reference the contract was written from; then Freight's two.
  [
    '@tus/server MemoryLocker',
    async (acquireTimeoutMs) => new TusServerMemoryLocker({ acquireLockTimeout: acquireTimeoutMs }),
  ],
  ['MemoryLocker', async (acquireTimeoutMs) => new MemoryLocker({ acquireTimeoutMs })],
  ['PostgresLocker', (acquireTimeoutMs) => postgresLocker({ acquireTimeoutMs })],
])('locker contract: %s', (_name, makeLocker) => {
  let locker: Locker;
  beforeAll(async () => {
    // Long enough never to run out in a passing test, short enough that a lock wrongly kept fails it quickly.
    locker = await makeLocker(5_000);
  });

  test('a lock is taken, given back, and taken again', async () => {
    const id = randomUUID();
    const first = locker.newLock(id);
    await first.lock(noStop, ignore);
    await first.unlock();
    const again = locker.newLock(id);
    await again.lock(noStop, ignore);
    await again.unlock();
  });

  test('a second request on the same upload waits until the first unlocks; one on another upload does not', async () => {
    const id = randomUUID();
    const events: string[] = [];
    const asked = releaseRequests();
    const first = locker.newLock(id);
    await first.lock(noStop, asked.fn);
    const second = locker.newLock(id);
    const secondAcquired = second.lock(noStop, ignore).then(() => events.push('second acquired'));
    await asked.called; // the second request is waiting now
    const other = locker.newLock(randomUUID());
    await other.lock(noStop, ignore);
    events.push('other acquired', 'first unlocks');
    await first.unlock();
    await secondAcquired;
    expect(events).toEqual(['other acquired', 'first unlocks', 'second acquired']);
    await Promise.all([second.unlock(), other.unlock()]);
  });

  test('the holder is asked to release when another request wants the lock; when it does, the waiter gets it', async () => {
    const id = randomUUID();
    const holder = locker.newLock(id);
    let asked = 0;
    await holder.lock(noStop, () => {
      if (asked++ === 0) void holder.unlock();
    });
    const waiter = locker.newLock(id);
    await waiter.lock(noStop, ignore);
    expect(asked).toBeGreaterThan(0);
    await waiter.unlock();
  });

  test('a request that cannot get the lock in time fails with ERR_LOCK_TIMEOUT', async () => {
    const short = await makeLocker(300);
    const id = randomUUID();
    const holder = short.newLock(id);
    await holder.lock(noStop, ignore);
    const started = performance.now();
    await expect(short.newLock(id).lock(noStop, ignore)).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT);
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    await holder.unlock();
  });

  test('a waiting request whose stop signal aborts gives up at once, with ERR_LOCK_TIMEOUT', async () => {
    const id = randomUUID();
    const asked = releaseRequests();
    const holder = locker.newLock(id);
    await holder.lock(noStop, asked.fn);
    const stop = new AbortController();
    const waiting = locker.newLock(id).lock(stop.signal, ignore);
    await asked.called;
    const abortedAt = performance.now();
    stop.abort();
    await expect(waiting).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT);
    expect(performance.now() - abortedAt).toBeLessThan(1_000); // the acquire timeout is 5 s
    await holder.unlock();
    const next = locker.newLock(id);
    await next.lock(noStop, ignore);
    await next.unlock();
  });

  test('requests of one process on the same upload never hold the lock together', async () => {
    const id = randomUUID();
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        const lock = locker.newLock(id);
        await lock.lock(noStop, ignore);
        most = Math.max(most, ++inside);
        for (let i = 0; i < 3; i++) await turn(); // hold it while the others' requests are answered
        inside--;
        await lock.unlock();
      }),
    );
    expect(most).toBe(1);
  });
});

describe.each<[string, () => Promise<UploadLocker>]>([
  ['MemoryLocker', async () => new MemoryLocker({ acquireTimeoutMs: 5_000 })],
  ['PostgresLocker', () => postgresLocker({ acquireTimeoutMs: 5_000 })],
])("Freight's %s tells whether a request of this process writes an upload", (_name, makeLocker) => {
  test('heldHere: only while a request holds the lock, not while it waits for it', async () => {
    const locker = await makeLocker();
    const id = randomUUID();
    expect(locker.heldHere(id)).toBe(false);
    const asked = releaseRequests();
    const holder = locker.newLock(id);
    await holder.lock(noStop, asked.fn);
    expect(locker.heldHere(id)).toBe(true);
    expect(locker.heldHere(randomUUID())).toBe(false);
    const waiter = locker.newLock(id);
    const waiting = waiter.lock(noStop, ignore);
    await asked.called;
    await holder.unlock();
    await waiting;
    expect(locker.heldHere(id)).toBe(true);
    await waiter.unlock();
    expect(locker.heldHere(id)).toBe(false);
  });
});

describe('PostgresLocker across instances', () => {
  let admin: postgres.Sql;
  beforeAll(() => {
    admin = postgres(testDatabaseUrl(), { max: 1, onnotice: ignore });
    cleanups.push(() => admin.end());
  });

  /** The backend holding the advisory lock of `id` (pg_locks shows a bigint key as classid:objid, objsubid 1). */
  async function holderPid(id: string): Promise<number | undefined> {
    const rows = await admin<{ pid: number }[]>`
      select pid from pg_locks
      where locktype = 'advisory' and granted and objsubid = 1
        and ((classid::bigint << 32) | objid::bigint) = ${uploadLockKey(id).toString()}::bigint`;
    return rows[0]?.pid;
  }

  /** Waits (briefly) for Postgres to have freed the lock of `id`. */
  async function freed(id: string): Promise<void> {
    const deadline = performance.now() + 2_000;
    while ((await holderPid(id)) !== undefined) {
      if (performance.now() > deadline) throw new Error(`the lock of ${id} is still held`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  test('held on A and wanted on B: A is asked to release, and B gets the lock as soon as A unlocks', async () => {
    // Waiters retry only every 10 s here: a quick hand-over can only come from the notifications.
    const a = await postgresLocker({ pollMs: 10_000 });
    const b = await postgresLocker({ pollMs: 10_000, acquireTimeoutMs: 5_000 });
    const id = randomUUID();
    const asked = releaseRequests();
    const held = a.newLock(id);
    await held.lock(noStop, asked.fn);
    const heldBy = await holderPid(id);
    const wanted = b.newLock(id);
    const acquired = wanted.lock(noStop, ignore);
    await asked.called;
    const unlockedAt = performance.now();
    await held.unlock();
    await acquired;
    expect(performance.now() - unlockedAt).toBeLessThan(2_000);
    expect(await holderPid(id)).not.toBe(heldBy);
    await wanted.unlock();
    expect(await holderPid(id)).toBeUndefined();
  });

  test("a holder whose session dies is told; B can take the lock, and A's late unlock neither throws nor frees it", async () => {
    // No heartbeat during the test: a connection that closes is noticed as it closes.
    const a = await postgresLocker({ heartbeatMs: 60_000 });
    const b = await postgresLocker({ acquireTimeoutMs: 3_000 });
    const id = randomUUID();
    const told = releaseRequests();
    const held = a.newLock(id);
    await held.lock(noStop, told.fn);
    const sessionA = await holderPid(id);
    expect(sessionA).toBeDefined();
    await admin`select pg_terminate_backend(${sessionA!})`;
    await told.called; // nobody else wants the lock: A's holder is told because its session died
    const taken = b.newLock(id);
    await taken.lock(noStop, ignore);
    const sessionB = await holderPid(id);
    expect(sessionB).not.toBe(sessionA);
    await held.unlock();
    expect(await holderPid(id)).toBe(sessionB);
    // A carries on with a new session.
    const next = a.newLock(randomUUID());
    await next.lock(noStop, ignore);
    await next.unlock();
    await taken.unlock();
  });

  test('a holder whose session died keeps its slot in the process until it unlocks: the next request here waits', async () => {
    const locker = await postgresLocker({ heartbeatMs: 60_000, acquireTimeoutMs: 3_000 });
    const id = randomUUID();
    const told = releaseRequests();
    const held = locker.newLock(id);
    await held.lock(noStop, told.fn);
    await admin`select pg_terminate_backend(${(await holderPid(id))!})`;
    await told.called;
    // The request told to stop may still be writing (for @tus/server's lockDrainTimeout): no one here may start.
    const events: string[] = [];
    const askedAgain = told.nextCall();
    const next = locker.newLock(id);
    const acquired = next.lock(noStop, ignore).then(() => events.push('next acquired'));
    await askedAgain;
    events.push('held unlocks');
    await held.unlock();
    await acquired;
    expect(events).toEqual(['held unlocks', 'next acquired']);
    expect(await holderPid(id)).toBeDefined();
    await next.unlock();
  });

  test("a waiter on B gets the lock once the holder's session on A dies, with no notification from A", async () => {
    const a = await postgresLocker();
    const b = await postgresLocker({ acquireTimeoutMs: 5_000 });
    const id = randomUUID();
    const asked = releaseRequests();
    await a.newLock(id).lock(noStop, asked.fn); // a holder that never lets go (a request stuck on a dead client)
    const sessionA = await holderPid(id);
    const waiting = b.newLock(id).lock(noStop, ignore);
    await asked.called; // B is waiting
    await admin`select pg_terminate_backend(${sessionA!})`;
    await waiting;
    expect(await holderPid(id)).not.toBe(sessionA);
  });

  test('two requests of one instance hand the lock over in the process; Postgres holds it once, then not at all', async () => {
    const locker = await postgresLocker({ acquireTimeoutMs: 3_000 });
    const id = randomUUID();
    const asked = releaseRequests();
    const first = locker.newLock(id);
    await first.lock(noStop, asked.fn);
    const session = await holderPid(id);
    const second = locker.newLock(id);
    const acquired = second.lock(noStop, ignore);
    await asked.called;
    await first.unlock();
    await acquired;
    expect(await holderPid(id)).toBe(session);
    await second.unlock();
    // A session lock taken twice (re-entrant) and given back once would still show here.
    expect(await holderPid(id)).toBeUndefined();
  });

  test('a database that stops answering, then goes away: holders are told, lock() fails with DATABASE_UNAVAILABLE in bounded time', async () => {
    const relay = await tcpRelay(testDatabaseUrl());
    cleanups.push(relay.down);
    const locker = await postgresLocker({ url: relay.url, queryTimeoutMs: 500, heartbeatMs: 100 });
    const id = randomUUID();
    const told = releaseRequests();
    const held = locker.newLock(id);
    await held.lock(noStop, told.fn);

    relay.stall();
    await told.called; // the heartbeat went unanswered: the lock is in doubt, its holder must stop
    let started = performance.now();
    await expect(locker.newLock(randomUUID()).lock(noStop, ignore)).rejects.toMatchObject({
      code: 'ERR_DATABASE_UNAVAILABLE',
    });
    expect(performance.now() - started).toBeGreaterThanOrEqual(400);
    expect(performance.now() - started).toBeLessThan(1_500);
    await held.unlock();
    await freed(id); // the locker dropped the session in doubt, so Postgres let go of its lock

    await relay.down();
    started = performance.now();
    await expect(locker.newLock(randomUUID()).lock(noStop, ignore)).rejects.toMatchObject({
      code: 'ERR_DATABASE_UNAVAILABLE',
    });
    expect(performance.now() - started).toBeLessThan(1_500);
    await expect(PostgresLocker.create({ url: relay.url, queryTimeoutMs: 500 })).rejects.toMatchObject({
      code: 'ERR_DATABASE_UNAVAILABLE',
    });
  });
});

/** A TCP relay to the test database that can stop forwarding (a database that does not answer) or go away. */
async function tcpRelay(databaseUrl: string) {
  const target = new URL(databaseUrl);
  const sockets = new Set<net.Socket>();
  let stalled = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on('data', (chunk) => stalled || to.write(chunk));
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
      from.on('error', ignore);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  let down: Promise<void> | undefined;
  return {
    url: url.toString(),
    stall: () => {
      stalled = true;
    },
    down: () =>
      (down ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      })),
  };
}
