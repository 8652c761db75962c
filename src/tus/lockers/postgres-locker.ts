/**
 * The tus lock across instances (invariant 3, one writer per upload): PostgreSQL session-level advisory locks.
 *
 * One postgres.js connection per instance (the "session") holds every advisory lock of the instance; a second one
 * LISTENs. Session locks are re-entrant, so requests of this process first take turns on an in-process slot per
 * upload id (as MemoryLocker does), and only the request holding that slot asks Postgres. Postgres frees a
 * session's locks when its connection ends, so a dead process or connection never keeps one. The other way round,
 * a session we are unsure of (closed, silently replaced by a reconnect, not answering) is ended at once and every
 * lock held through it is lost: its holder is asked to release, and its unlock() has nothing left to give back.
 *
 * Waiters ask the holder to let go (NOTIFY freight_lock_release), are woken by NOTIFY freight_lock_released, and
 * also retry every pollMs (backing off to 4x) so that a missed notification only costs latency.
 */
import { randomBytes } from 'node:crypto';
import { ERRORS, type Lock, type RequestRelease } from '@tus/utils';
import postgres, { type PendingQuery, type Sql } from 'postgres';
import { codesOf } from '../../db/availability.js';
import { FreightError, RETRY_AFTER_SECONDS } from '../../errors.js';
import { uploadLockKey } from '../../db/ids.js';
import type { UploadLocker } from './locker.js';

const RELEASE_CHANNEL = 'freight_lock_release';
const RELEASED_CHANNEL = 'freight_lock_released';

/**
 * The database did not answer (down, unreachable, or slower than queryTimeoutMs): the lock state is unknown.
 * Answered like any database outage, in the same words whether the lock or the upload's row met it first: 503
 * (423 on a resume check) with Retry-After, naming the failure's code when there is one (ECONNREFUSED …).
 */
export class LockerUnavailableError extends FreightError {
  constructor(message: string, options?: ErrorOptions & { silentForMs?: number }) {
    const problem =
      options?.silentForMs === undefined
        ? `the database is unavailable (${codesOf(options?.cause)[0] ?? message})`
        : `the database did not answer within ${options.silentForMs / 1000} s`;
    super(
      'ERR_DATABASE_UNAVAILABLE',
      `${problem}; retry later`,
      { 'Retry-After': String(RETRY_AFTER_SECONDS) },
      undefined,
      options,
    );
    this.name = 'LockerUnavailableError';
  }
}

export interface LockerLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PostgresLockerOptions {
  url: string;
  /** How long lock() waits for a held lock before ERR_LOCK_TIMEOUT. */
  acquireTimeoutMs?: number;
  /** Every query (and connecting) is given up after this long. */
  queryTimeoutMs?: number;
  /** How often the session is checked while open. */
  heartbeatMs?: number;
  /** A waiter's first retry without a notification; later ones back off to 4x this. */
  pollMs?: number;
  log?: LockerLog;
}

interface Session {
  sql: Sql;
  pid: number;
  lost: boolean;
}

interface Holder {
  requestRelease: RequestRelease;
  /** The session holding this request's advisory lock; undefined while the request is still asking for it. */
  session?: Session;
  /** When it got the lock, by the database's clock (ms): release requests sent before are not for it. */
  acquiredAt?: number;
}

/**
 * A release request names its sender and when it was sent, by the database's clock (the one clock all instances
 * share): "<sender> <ms> <upload id>". A holder ignores its own instance's requests (a waiter's last ones may
 * arrive after it got the lock itself) and those sent before it got the lock (meant for a holder before it).
 */
const releaseRequest = (payload: string) => {
  const [sender, at, id] = payload.split(' ');
  return { sender, at: Number(at), id: id ?? '' };
};

/** Resolves with `promise`, or rejects once `ms` have passed. */
async function within<T>(promise: PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LockerUnavailableError(`${what}: no answer`, { silentForMs: ms })), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class PostgresLocker implements UploadLocker {
  private readonly acquireTimeoutMs: number;
  private readonly queryTimeoutMs: number;
  private readonly pollMs: number;
  private readonly log: LockerLog;
  /** The request of this process that holds (or is asking Postgres for) each upload id. */
  private readonly holders = new Map<string, Holder>();
  /** Callbacks of requests waiting for an id to change hands. */
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly listener: Sql;
  /** Names this instance's release requests. */
  private readonly instance = randomBytes(8).toString('hex');
  private current?: Session;
  private opening?: Promise<Session>;
  private heartbeat?: NodeJS.Timeout;
  private beating = false;
  private closed = false;

  private constructor(private readonly options: PostgresLockerOptions) {
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? 30_000;
    this.queryTimeoutMs = options.queryTimeoutMs ?? 10_000;
    this.pollMs = options.pollMs ?? 250;
    this.log = options.log ?? {
      warn: (obj, msg) => console.warn(msg, obj),
      error: (obj, msg) => console.error(msg, obj),
    };
    this.listener = this.connection('freight-locker-listen');
  }

  static async create(options: PostgresLockerOptions): Promise<PostgresLocker> {
    const locker = new PostgresLocker(options);
    try {
      const listening = (channel: string, onNotify: (id: string) => void) =>
        within(locker.listener.listen(channel, onNotify), locker.queryTimeoutMs, `listen ${channel}`);
      await listening(RELEASE_CHANNEL, (payload) => locker.releaseRequested(payload));
      await listening(RELEASED_CHANNEL, (id) => locker.wake(id));
      await locker.session();
    } catch (error) {
      await locker.close();
      throw error instanceof LockerUnavailableError
        ? error
        : new LockerUnavailableError('database unreachable', { cause: error });
    }
    const heartbeatMs = options.heartbeatMs ?? 5_000;
    locker.heartbeat = setInterval(() => void locker.beat(), heartbeatMs).unref();
    return locker;
  }

  heldHere(id: string): boolean {
    return this.holders.get(id)?.session !== undefined;
  }

  newLock(id: string): Lock {
    let holder: Holder | undefined;
    return {
      lock: async (stopSignal, requestRelease) => {
        holder = await this.acquire(id, requestRelease, stopSignal);
      },
      unlock: async () => {
        if (!holder) throw new Error('Releasing an unlocked lock!');
        const released = holder;
        holder = undefined;
        await this.release(id, released);
      },
    };
  }

  /** Ends both connections; Postgres frees every lock of the session with it. Holders are told they lost theirs. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const id of this.waiters.keys()) this.wake(id); // to fail now rather than at their timeout
    await this.opening?.catch(() => {});
    const session = this.current;
    await Promise.all([
      session ? this.lose(session, 'locker closed', 1) : undefined,
      this.listener.end({ timeout: 1 }),
    ]);
  }

  private async acquire(id: string, requestRelease: RequestRelease, stopSignal: AbortSignal): Promise<Holder> {
    const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(this.acquireTimeoutMs)]);
    const holder: Holder = { requestRelease };
    const key = uploadLockKey(id).toString();
    await this.claim(id, holder, signal);
    try {
      for (let round = 0; ; round++) {
        if (signal.aborted) throw ERRORS.ERR_LOCK_TIMEOUT;
        // Listening before asking, so that a release announced while we ask is not missed.
        const delay = Math.min(this.pollMs * 2 ** round, 4 * this.pollMs);
        const changed = this.nextChange(id, AbortSignal.any([signal, AbortSignal.timeout(delay)]));
        try {
          const session = await this.session();
          const { locked, now } = await this.query(
            session,
            (sql) =>
              sql<{ pid: number; locked: boolean; now: number }[]>`
              select pg_backend_pid() as pid, pg_try_advisory_lock(${key}::bigint) as locked,
                     (extract(epoch from clock_timestamp()) * 1000)::float8 as now`,
          );
          if (locked) {
            holder.session = session;
            holder.acquiredAt = now;
            this.wake(id); // local waiters now have a holder to ask
            return holder;
          }
          // Held by another instance: ask its holder to let go. It may not, or not hear us; we retry anyway.
          await this.query(
            session,
            (sql) =>
              sql<{ pid: number }[]>`
              select pg_backend_pid() as pid,
                     pg_notify(${RELEASE_CHANNEL}, ${this.instance} || ' ' || (extract(epoch from clock_timestamp()) * 1000)::float8 || ' ' || ${id})`,
          );
          await changed.done;
        } finally {
          changed.cancel();
        }
      }
    } catch (error) {
      this.vacate(id, holder);
      throw error;
    }
  }

  /** Waits for this process's slot for `id`, asking each request that holds it to release it. */
  private async claim(id: string, holder: Holder, signal: AbortSignal): Promise<void> {
    let asked: Holder | undefined;
    for (;;) {
      if (this.closed) throw new LockerUnavailableError('locker closed');
      if (signal.aborted) throw ERRORS.ERR_LOCK_TIMEOUT;
      const current = this.holders.get(id);
      if (!current) break;
      if (current.session && current !== asked) {
        asked = current;
        this.ask(current);
      }
      await this.nextChange(id, signal).done;
    }
    this.holders.set(id, holder);
  }

  private async release(id: string, holder: Holder): Promise<void> {
    const session = holder.session;
    const key = uploadLockKey(id).toString();
    try {
      if (!session || session.lost) return; // the lock went with its session: only the slot here is left to free
      const { unlocked } = await this.query(
        session,
        (sql) =>
          sql<{ pid: number; unlocked: boolean }[]>`
          select pg_backend_pid() as pid, pg_advisory_unlock(${key}::bigint) as unlocked, pg_notify(${RELEASED_CHANNEL}, ${id})`,
      );
      if (!unlocked) this.log.error({ id }, 'locker: the session did not hold a lock this locker thought it held');
    } catch (error) {
      // query() has ended the session, which frees the lock.
      this.log.warn({ id, err: error }, 'locker: unlock failed; the session was ended instead');
    } finally {
      this.vacate(id, holder);
    }
  }

  /** The lock session, opened if needed; rejects with LockerUnavailableError if it cannot be opened in time. */
  private session(): Promise<Session> {
    if (this.closed) return Promise.reject(new LockerUnavailableError('locker closed'));
    if (this.current) return Promise.resolve(this.current);
    this.opening ??= this.open().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async open(): Promise<Session> {
    let session: Session | undefined;
    // The session's connection may close without anyone asking: Postgres has then freed its locks.
    const sql = this.connection('freight-locker', () => session && this.lose(session, 'connection closed'));
    try {
      const [row] = await within(
        sql<{ pid: number }[]>`select pg_backend_pid() as pid`,
        this.queryTimeoutMs,
        'open session',
      );
      if (this.closed) throw new LockerUnavailableError('locker closed');
      session = { sql, pid: row?.pid ?? 0, lost: false };
      this.current = session;
      return session;
    } catch (error) {
      void sql.end({ timeout: 0 });
      throw error instanceof LockerUnavailableError
        ? error
        : new LockerUnavailableError('database unreachable', { cause: error });
    }
  }

  /**
   * Runs one query on the session, bounded by queryTimeoutMs. Every query also returns the backend's pid: postgres.js
   * reconnects silently, and a new backend holds none of the old one's locks. Any failure puts the session in doubt.
   */
  private async query<Row extends { pid: number }>(
    session: Session,
    run: (sql: Sql) => PendingQuery<Row[]>,
  ): Promise<Row> {
    try {
      const [row] = await within(run(session.sql), this.queryTimeoutMs, 'lock query');
      if (session.lost || row?.pid !== session.pid) throw new LockerUnavailableError('lock session replaced');
      return row;
    } catch (error) {
      void this.lose(session, error instanceof Error ? error.message : String(error));
      throw error instanceof LockerUnavailableError
        ? error
        : new LockerUnavailableError('lock query failed', { cause: error });
    }
  }

  /** Ends a session in doubt (which frees its locks in Postgres) and tells each of its holders their lock is gone. */
  private lose(session: Session, reason: string, graceSeconds = 0): Promise<void> {
    if (!session.lost) {
      session.lost = true;
      if (this.current === session) this.current = undefined;
      let count = 0;
      // Each keeps this process's slot until its unlock(), so that the next request here starts only once the
      // writer that lost the lock has stopped.
      for (const holder of this.holders.values()) {
        if (holder.session !== session) continue;
        this.ask(holder);
        count++;
      }
      if (count > 0)
        this.log.warn({ pid: session.pid, reason, locks: count }, 'locker: lock session lost, with its locks');
    }
    return session.sql.end({ timeout: graceSeconds }).catch(() => {});
  }

  /** Checks the session now and then, so that a holder learns of a dead session without making a request. */
  private async beat(): Promise<void> {
    const session = this.current;
    if (!session || this.beating) return;
    this.beating = true;
    await this.query(session, (sql) => sql<{ pid: number }[]>`select pg_backend_pid() as pid`).catch(() => {});
    this.beating = false;
  }

  /** Another instance wants an upload: ask our holder, if we really hold it (not if we are only asking for it). */
  private releaseRequested(payload: string): void {
    const { sender, at, id } = releaseRequest(payload);
    if (sender === this.instance) return;
    const holder = this.holders.get(id);
    if (holder?.session && (holder.acquiredAt === undefined || at >= holder.acquiredAt)) this.ask(holder);
  }

  private ask(holder: Holder): void {
    Promise.resolve()
      .then(holder.requestRelease)
      .catch((error: unknown) => this.log.error({ err: error }, 'locker: requestRelease threw'));
  }

  private vacate(id: string, holder: Holder): void {
    if (this.holders.get(id) !== holder) return;
    this.holders.delete(id);
    this.wake(id);
  }

  /** Resolves when `id` changes hands here or is released elsewhere, or when `signal` aborts. */
  private nextChange(id: string, signal: AbortSignal): { done: Promise<void>; cancel(): void } {
    let cancel = () => {};
    const done = new Promise<void>((resolve) => {
      const set = this.waiters.get(id) ?? new Set();
      this.waiters.set(id, set);
      cancel = () => {
        set.delete(cancel);
        if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
        signal.removeEventListener('abort', cancel);
        resolve();
      };
      set.add(cancel);
      if (signal.aborted) cancel();
      else signal.addEventListener('abort', cancel, { once: true });
    });
    return { done, cancel };
  }

  private wake(id: string): void {
    for (const waiter of [...(this.waiters.get(id) ?? [])]) waiter();
  }

  private connection(name: string, onclose?: () => void): Sql {
    const ms = this.queryTimeoutMs;
    return postgres(this.options.url, {
      max: 1,
      // Never recycled nor closed when idle (postgres.js's default lifetime is 30 to 60 minutes): that would drop
      // every lock. Set here, not left to PGIDLE_TIMEOUT or PGMAX_LIFETIME.
      max_lifetime: null,
      idle_timeout: 0,
      connect_timeout: Math.max(1, Math.ceil(ms / 1000)),
      fetch_types: false,
      onnotice: () => {},
      onclose,
      connection: { application_name: name, statement_timeout: ms, idle_in_transaction_session_timeout: ms },
    });
  }
}
