/**
 * Opens the database: real PostgreSQL through postgres.js when DATABASE_URL is set, otherwise embedded PGlite
 * under DATA_DIR/db. Both get the same schema from the same committed migrations, applied here at start-up.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { withinDeadline } from './availability.js';
import * as schema from './schema.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** postgres.js answers execute() with the rows; PGlite with { rows }. */
export const rowsOf = <T>(result: unknown): T[] =>
  Array.isArray(result) ? (result as T[]) : ((result as { rows?: T[] }).rows ?? []);

/** What exclusive() did: ran the work (and its value), or not, because another session holds the lock. */
export type ExclusiveRun<T> = { ran: true; value: T } | { ran: false };

export interface Database {
  db: Db;
  kind: 'postgres' | 'pglite';
  /** A round trip to the database (readiness checks). */
  ping(): Promise<void>;
  /**
   * Runs `work` unless another process runs work under the same `key` now (PostgreSQL: a session-level advisory
   * lock on a session of its own, which ends, and so releases the lock, when the work is done or if the process
   * dies; PGlite: one process only, so it simply runs). Taking the lock never waits.
   */
  exclusive<T>(key: number, work: () => Promise<T>): Promise<ExclusiveRun<T>>;
  close(): Promise<void>;
}

/** The class of exclusive()'s advisory locks (two int4 keys: class, key), apart from every other lock of Freight. */
const EXCLUSIVE_LOCK_CLASS = 0x4558434c; // "EXCL"

/** drizzle/ sits at the package root, both beside src/ and above dist/src/. */
function migrationsFolder(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'drizzle');
    if (existsSync(path.join(candidate, 'meta', '_journal.json'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`drizzle/ migrations folder not found above ${import.meta.url}`);
    dir = parent;
  }
}

export interface DatabaseOptions {
  url: string | undefined;
  dataDir: string;
  /** Connect and statement timeout (DATABASE_TIMEOUT). */
  timeoutMs: number;
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.url ? openPostgres(options.url, options.timeoutMs) : openPglite(path.join(options.dataDir, 'db'));
}

/** An arbitrary constant: instances starting together take turns applying migrations. */
const MIGRATION_LOCK_KEY = 0x46524549; // "FREI"

export async function openPostgres(url: string, timeoutMs = 10_000): Promise<Database> {
  const { default: postgres } = await import('postgres');
  const { drizzle } = await import('drizzle-orm/postgres-js');
  const { migrate } = await import('drizzle-orm/postgres-js/migrator');

  const connect_timeout = Math.ceil(timeoutMs / 1000);
  // Migrations run on a single connection so the advisory lock and the DDL share a session. They may wait for
  // another instance's migrations, so only connecting is bounded here.
  const migrator = postgres(url, { max: 1, connect_timeout, onnotice: () => {} });
  try {
    await migrator`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    await migrate(drizzle(migrator, { schema }), { migrationsFolder: migrationsFolder() });
    await migrator`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
  } finally {
    await migrator.end();
  }

  const client = postgres(url, {
    max: 10,
    connect_timeout,
    // Server-side bounds; availability.ts adds the client-side one for a server that stops answering at all.
    connection: { statement_timeout: timeoutMs, idle_in_transaction_session_timeout: timeoutMs },
    onnotice: () => {},
  });
  const db = drizzle(client, { schema });
  return {
    db,
    kind: 'postgres',
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    exclusive: async (key, work) => {
      const session = postgres(url, { max: 1, connect_timeout, onnotice: () => {} });
      try {
        const [row] = await withinDeadline(
          session<
            { locked: boolean }[]
          >`select pg_try_advisory_lock(${EXCLUSIVE_LOCK_CLASS}::integer, ${key}::integer) as locked`,
          timeoutMs,
        );
        if (!row?.locked) return { ran: false };
        return { ran: true, value: await work() };
      } finally {
        // Ending the session releases its lock, whatever became of the work.
        await session.end({ timeout: 5 });
      }
    },
    close: () => client.end({ timeout: 5 }),
  };
}

/** dataDir may be "memory://" for a throwaway database. */
export async function openPglite(dataDir: string): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  if (!dataDir.startsWith('memory://')) await mkdir(dataDir, { recursive: true });
  const client = await PGlite.create(dataDir);
  const db = drizzle(client, { schema });
  await migrate(db, { migrationsFolder: migrationsFolder() });
  const held = new Set<number>();
  return {
    db,
    kind: 'pglite',
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    // One process: a lock held in memory is a lock held everywhere.
    exclusive: async (key, work) => {
      if (held.has(key)) return { ran: false };
      held.add(key);
      try {
        return { ran: true, value: await work() };
      } finally {
        held.delete(key);
      }
    },
    close: () => client.close(),
  };
}
