/**
 * The webhook outbox's queries on both databases: claims are leases (a claimed event is not claimed again until
 * its attempt is due once more), concurrent claims never share an event, failures schedule the next attempt, a
 * given-up event is never due again, and only delivered events are pruned.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openPglite, openPostgres, type Database } from '../../src/db/client.js';
import { webhookOutbox } from '../../src/db/schema.js';
import { WebhookOutbox } from '../../src/db/webhook-outbox.js';
import { isolatedDatabase } from '../helpers/harness.js';

describe.each([
  ['PostgreSQL', 'postgres'],
  ['PGlite', 'pglite'],
] as const)('webhook outbox on %s', (_name, kind) => {
  let database: Database;
  let drop: (() => Promise<void>) | undefined;
  let outbox: WebhookOutbox;

  beforeAll(async () => {
    if (kind === 'postgres') {
      const isolated = await isolatedDatabase('freight_outbox');
      drop = isolated.drop;
      database = await openPostgres(isolated.url);
    } else {
      database = await openPglite('memory://');
    }
    outbox = new WebhookOutbox(database.db);
  });
  afterAll(async () => {
    await database?.close();
    await drop?.();
  });

  const write = async (count: number) => {
    await database.db.execute(sql`delete from ${webhookOutbox}`);
    const rows = Array.from({ length: count }, () => ({
      event: 'upload.created' as const,
      uploadId: randomUUID(),
      payload: {},
    }));
    return (await database.db.insert(webhookOutbox).values(rows).returning()).map((row) => row.id);
  };

  test('a claim counts the attempt and holds the event for the lease; concurrent claims never share one', async () => {
    const ids = await write(10);
    const claims = await Promise.all([
      outbox.claimDue(4, 60_000),
      outbox.claimDue(4, 60_000),
      outbox.claimDue(4, 60_000),
    ]);
    const claimed = claims.flat().map((row) => row.id);
    expect(claimed.sort((a, b) => a - b)).toEqual(ids);
    expect(claims.flat().every((row) => row.attempts === 1 && row.nextAttemptAt.getTime() > Date.now() + 50_000)).toBe(
      true,
    );
    expect(await outbox.claimDue(10, 60_000)).toEqual([]);
  });

  test('a failed attempt is due again after its delay; a delivered one and a given-up one never', async () => {
    const [retried, delivered, abandoned] = await write(3);
    await outbox.claimDue(10, 60_000);
    await outbox.retryLater(retried!, 0, 'the receiver answered 500');
    await outbox.markDelivered(delivered!);
    await outbox.giveUp(abandoned!, 'the receiver answered 410');
    const [again] = await outbox.claimDue(10, 60_000);
    expect(again).toMatchObject({ id: retried, attempts: 2, lastError: 'the receiver answered 500' });
    await outbox.retryLater(retried!, 60_000, 'still 500');
    expect(await outbox.claimDue(10, 60_000)).toEqual([]);

    const rows = await database.db.execute(
      sql`select id::int as id, delivered_at is not null as delivered, next_attempt_at = 'infinity' as never, last_error from ${webhookOutbox} order by id`,
    );
    const list = Array.isArray(rows) ? rows : (rows as { rows: unknown[] }).rows;
    expect(list).toEqual([
      { id: retried, delivered: false, never: false, last_error: 'still 500' },
      { id: delivered, delivered: true, never: false, last_error: null },
      { id: abandoned, delivered: false, never: true, last_error: 'the receiver answered 410' },
    ]);
  });

  test('pruning counts (dry run) or deletes delivered events older than the cut-off, and nothing else', async () => {
    const [old, recent, undelivered] = await write(3);
    await database.db.execute(
      sql`update ${webhookOutbox} set delivered_at = now() - interval '8 days' where id = ${old}`,
    );
    await outbox.markDelivered(recent!);
    const cutOff = new Date(Date.now() - 7 * 86_400_000);
    expect(await outbox.pruneDelivered(cutOff, true)).toBe(1);
    expect(await outbox.pruneDelivered(cutOff, false)).toBe(1);
    expect(await outbox.pruneDelivered(cutOff, false)).toBe(0);
    const left = await database.db.select({ id: webhookOutbox.id }).from(webhookOutbox).orderBy(webhookOutbox.id);
    expect(left.map((row) => row.id)).toEqual([recent, undelivered]);
  });
});
