/**
 * Every database call is bounded in time, and a database that is down, restarting or silent is one typed
 * error (503 database_unavailable, or 423 on a resume check) instead of a driver error, a 500 or a hang.
 *
 * postgres.js has connect and statement timeouts (set in client.ts), but a server that stopped answering on an
 * open connection (a paused process, a dead link that still ACKs) holds a query forever: the deadline here is
 * the client-side bound. A query abandoned at its deadline may still finish later. Every UPDATE Freight makes
 * is guarded and true whenever it lands, so a late one never makes state lie; an INSERT that lands after its
 * request was answered 503 (the client never learnt of the row and will create another) is undone then: each
 * such write names its undo.
 */
import { FreightError, databaseUnavailable } from '../errors.js';

/** Driver and server codes that mean "the database cannot be reached or cannot serve now", not "bad query". */
const UNAVAILABLE = new Set([
  // postgres.js
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  // the network
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  // PostgreSQL: shutting down, starting up, out of connections, statement_timeout
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '57014',
]);

/** The error's code, or that of an error it wraps (drizzle wraps driver errors in `cause`). */
export function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

/** A unique violation (23505) of `constraint` (postgres.js names it `constraint_name`, PGlite `constraint`). */
export function violatesUnique(error: unknown, constraint: string): boolean {
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    const { code, constraint_name, constraint: name } = current as Record<string, unknown>;
    if (code === '23505' && (constraint_name === constraint || name === constraint)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

export function isDatabaseUnavailable(error: unknown): boolean {
  // SQLSTATE class 08: connection exception.
  return codesOf(error).some((code) => UNAVAILABLE.has(code) || /^08[0-9A-Z]{3}$/.test(code));
}

const UNDO_ATTEMPTS = 5;
const UNDO_PAUSE_MS = 2_000;

/** Runs `undo` (a guarded write), a few times if the database is still shaky. */
async function undoLate(undo: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; attempt <= UNDO_ATTEMPTS; attempt++) {
    try {
      await undo();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, UNDO_PAUSE_MS));
    }
  }
}

/**
 * `work`, or database_unavailable once `timeoutMs` pass or when it fails for lack of a database. If the deadline
 * answered first and `work` succeeds later, `undoIfLate` runs.
 */
export async function withinDeadline<T>(
  work: Promise<T>,
  timeoutMs: number,
  undoIfLate?: () => Promise<unknown>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      if (undoIfLate)
        work.then(
          () => undoLate(undoIfLate),
          () => {},
        );
      reject(databaseUnavailable(`the database did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([work, deadline]);
  } catch (error) {
    if (isDatabaseUnavailable(error)) {
      throw databaseUnavailable(`the database is unavailable (${codesOf(error)[0]})`, error);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** For methods whose late success must be undone: the undo, given the same arguments. */
export type LateUndos<T> = {
  [K in keyof T]?: T[K] extends (...args: infer A) => Promise<unknown> ? (...args: A) => Promise<unknown> : never;
};

/** Told of every call through withDeadlines: the method, its duration, and how it failed, if it did. */
export interface QueryObserver {
  started(): void;
  finished(method: string, seconds: number, failure?: 'unavailable' | 'error'): void;
}

/**
 * The same object, with every method that returns a promise bounded by withinDeadline (and, with an observer,
 * timed: postgres.js reports nothing about its pool, so the calls are measured here, where they all pass). The
 * objects it holds under `nested` (a repository's parts) are bounded the same way.
 */
export function withDeadlines<T extends object>(
  target: T,
  timeoutMs: number,
  undos: LateUndos<T> = {},
  observer?: QueryObserver,
  nested: ReadonlyArray<keyof T> = [],
): T {
  const inner = new Map<PropertyKey, unknown>();
  for (const key of nested) {
    const value: unknown = target[key];
    if (typeof value === 'object' && value !== null) inner.set(key, withDeadlines(value, timeoutMs, {}, observer));
  }
  return new Proxy(target, {
    get(object, property, receiver) {
      if (inner.has(property)) return inner.get(property);
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      const undo = undos[property as keyof T] as ((...args: unknown[]) => Promise<unknown>) | undefined;
      return (...args: unknown[]) => {
        const started = performance.now();
        const result: unknown = value.apply(object, args);
        if (!(result instanceof Promise)) return result;
        const bounded = withinDeadline(result, timeoutMs, undo && (() => undo(...args)));
        if (!observer) return bounded;
        observer.started();
        const seconds = () => (performance.now() - started) / 1000;
        return bounded.then(
          (answer) => {
            observer.finished(String(property), seconds());
            return answer;
          },
          (error: unknown) => {
            const unavailable = error instanceof FreightError && error.code === 'ERR_DATABASE_UNAVAILABLE';
            observer.finished(String(property), seconds(), unavailable ? 'unavailable' : 'error');
            throw error;
          },
        );
      };
    },
  });
}
