/**
 * The queries of upload.progress and of the pre-finish gate, on both databases: a progress event replaces an
 * undelivered older one of its upload (coalesced), never one already delivered, is written only while the upload
 * is uploading short of its length, and not at all when WEBHOOK_EVENTS leaves it out; uploads awaiting approval are
 * claimed for one ask at a time (a lease), concurrent claims never share one, and a new ask keeps updated_at.
 */
import { randomUUID } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openPglite, openPostgres, type Database } from '../../src/db/client.js';
import { UploadRepository } from '../../src/db/repository.js';
import { webhookOutbox, type NewFileUpload } from '../../src/db/schema.js';
import { isolatedDatabase } from '../helpers/harness.js';

describe.each([
  ['PostgreSQL', 'postgres'],
  ['PGlite', 'pglite'],
] as const)('progress events and approvals on %s', (_name, kind) => {
  let database: Database;
  let drop: (() => Promise<void>) | undefined;
  let repo: UploadRepository;

  beforeAll(async () => {
    if (kind === 'postgres') {
      const isolated = await isolatedDatabase('freight_gate');
      drop = isolated.drop;
      database = await openPostgres(isolated.url);
    } else {
      database = await openPglite('memory://');
    }
    repo = new UploadRepository(database.db, { webhookEvents: true });
  });
  afterAll(async () => {
    await database?.close();
    await drop?.();
  });

  const newUpload = (overrides: Partial<NewFileUpload> = {}): NewFileUpload => {
    const id = randomUUID();
    return { id, userId: 'gate-user', protocol: 'tus', storageKey: id, totalSize: 1000, ...overrides };
  };
  const progressRows = (id: string) =>
    database.db
      .select()
      .from(webhookOutbox)
      .where(and(eq(webhookOutbox.uploadId, id), eq(webhookOutbox.event, 'upload.progress')))
      .orderBy(webhookOutbox.id);

  test('a newer progress replaces an undelivered older one: one waiting per upload, carrying the latest bytes', async () => {
    const row = await repo.insertUpload(newUpload());
    for (const bytes of [100, 200, 300]) {
      await repo.recordProgress(row.id, bytes);
      expect(await repo.approvals.reportProgress(row.id)).toBe(true);
    }
    const waiting = await progressRows(row.id);
    expect(waiting).toHaveLength(1);
    expect(waiting[0]!.payload).toMatchObject({ bytes_received: 300, total_size: 1000, status: 'uploading' });
    // Its id comes after the creation's: the events of one upload stay in the order of its changes.
    const [created] = await database.db
      .select()
      .from(webhookOutbox)
      .where(and(eq(webhookOutbox.uploadId, row.id), eq(webhookOutbox.event, 'upload.created')));
    expect(waiting[0]!.id).toBeGreaterThan(created!.id);

    // Delivered events stay; the next progress is a new row.
    await database.db
      .update(webhookOutbox)
      .set({ deliveredAt: new Date() })
      .where(eq(webhookOutbox.id, waiting[0]!.id));
    await repo.recordProgress(row.id, 400);
    await repo.approvals.reportProgress(row.id);
    await repo.recordProgress(row.id, 500);
    await repo.approvals.reportProgress(row.id);
    const after = await progressRows(row.id);
    expect(after.map((event) => [event.deliveredAt !== null, event.payload.bytes_received])).toEqual([
      [true, 300],
      [false, 500],
    ]);
    const undelivered = await database.db
      .select()
      .from(webhookOutbox)
      .where(and(eq(webhookOutbox.uploadId, row.id), isNull(webhookOutbox.deliveredAt)));
    expect(undelivered.map((event) => event.event).sort()).toEqual(['upload.created', 'upload.progress']);
  });

  test('no progress event for an upload not uploading, or at its length', async () => {
    const pending = await repo.insertUpload(newUpload());
    expect(await repo.approvals.reportProgress(pending.id)).toBe(false);
    const full = await repo.insertUpload(newUpload());
    await repo.recordProgress(full.id, 1000);
    expect(await repo.approvals.reportProgress(full.id)).toBe(false);
    const done = await repo.insertUpload(newUpload());
    await repo.recordProgress(done.id, 10);
    await repo.transition(done.id, 'complete');
    expect(await repo.approvals.reportProgress(done.id)).toBe(false);
    expect(await repo.approvals.reportProgress('not-a-uuid')).toBe(false);
    for (const id of [pending.id, full.id, done.id]) expect(await progressRows(id)).toEqual([]);
  });

  test('WEBHOOK_EVENTS: only the events chosen are written', async () => {
    const chosen = new UploadRepository(database.db, { webhookEvents: ['upload.completed'] });
    const row = await chosen.insertUpload(newUpload());
    await chosen.recordProgress(row.id, 10);
    expect(await chosen.approvals.reportProgress(row.id)).toBe(false);
    await chosen.transition(row.id, 'fail', { error: 'x' });
    await chosen.transition(row.id, 'complete');
    const events = await database.db.select().from(webhookOutbox).where(eq(webhookOutbox.uploadId, row.id));
    expect(events.map((event) => event.event)).toEqual(['upload.completed']);
  });

  test('uploads awaiting approval are claimed for one ask at a time, by one claimer; a new ask keeps updated_at', async () => {
    const now = new Date();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const row = await repo.insertUpload(newUpload({ userId: 'gate-claims' }));
      await repo.transition(row.id, 'awaitApproval', {
        updatedAt: new Date(now.getTime() - 60_000),
        lockedUntil: new Date(now.getTime() - 1),
      });
      ids.push(row.id);
    }
    const lease = new Date(now.getTime() + 60_000);
    const claims = await Promise.all([
      repo.approvals.claimAwaitingApproval(now, lease, 4),
      repo.approvals.claimAwaitingApproval(now, lease, 4),
      repo.approvals.claimAwaitingApproval(now, lease, 4),
    ]);
    const claimed = claims.flat().filter((row) => ids.includes(row.id));
    expect(claimed.map((row) => row.id).sort()).toEqual([...ids].sort());
    expect(claimed.every((row) => row.lockedUntil?.getTime() === lease.getTime())).toBe(true);
    expect(claimed.every((row) => row.updatedAt.getTime() === now.getTime() - 60_000)).toBe(true);
    // Leased: not due again before the lease ends; due after it.
    expect((await repo.approvals.claimAwaitingApproval(now, lease, 10)).filter((row) => ids.includes(row.id))).toEqual(
      [],
    );
    const later = new Date(lease.getTime() + 1);
    expect(await repo.approvals.askAgainAt(ids[0]!, later, 'no answer')).toBe(true);
    const again = await repo.approvals.claimAwaitingApproval(new Date(later.getTime() + 1), later, 10);
    expect(again.map((row) => row.id)).toContain(ids[0]);
    // Only uploads awaiting approval.
    expect(await repo.approvals.askAgainAt((await repo.insertUpload(newUpload())).id, later, 'x')).toBe(false);
  });
});
