/**
 * The repository against both databases Freight runs on: PostgreSQL (postgres.js) and embedded PGlite.
 * Same migrations, same queries, same answers.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import postgres from 'postgres';
import { openPglite, openPostgres, type Database } from '../../src/db/client.js';
import { eq } from 'drizzle-orm';
import { UploadRepository } from '../../src/db/repository.js';
import { fileUploads, webhookOutbox, type NewFileUpload } from '../../src/db/schema.js';
import { uploadOfSnapshot } from '../../src/db/webhook-outbox.js';
import { uploadLockKey } from '../../src/db/ids.js';
import { violatesUnique } from '../../src/db/availability.js';
import { HOLDING_PARTIALS } from '../../src/lifecycle.js';
import { testDatabaseUrl } from '../helpers/file-database.js';

describe.each([
  ['PostgreSQL', () => openPostgres(testDatabaseUrl())],
  ['PGlite', () => openPglite('memory://')],
])('upload repository on %s', (_name, open) => {
  let database: Database;
  let repo: UploadRepository;

  beforeAll(async () => {
    database = await open();
    repo = new UploadRepository(database.db);
  });
  afterAll(async () => {
    await database?.close();
  });

  const newUpload = (userId: string, overrides: Partial<NewFileUpload> = {}): NewFileUpload => {
    const id = randomUUID();
    return { id, userId, protocol: 'tus', storageKey: id, totalSize: 100, filename: 'f.bin', ...overrides };
  };

  test('an upload is found by its owner only', async () => {
    const row = await repo.insertUpload(newUpload('owner-1'));
    expect(row).toMatchObject({ status: 'pending', bytesReceived: 0, userId: 'owner-1' });
    expect((await repo.findOwnedUpload('owner-1', row.id))?.id).toBe(row.id);
    expect(await repo.findOwnedUpload('someone-else', row.id)).toBeUndefined();
    expect(await repo.findUpload('not-a-uuid')).toBeUndefined();
  });

  test('a storage key is one upload’s: a second insert with it is a unique violation both drivers name; found by key', async () => {
    const key = `uploads/${randomUUID()}/a.bin`;
    const first = await repo.insertUpload(newUpload('owner-key', { storageKey: key }));
    const racing = await Promise.allSettled([
      repo.insertUpload(newUpload('owner-key', { storageKey: key })),
      repo.insertUploadWithinLimit(newUpload('owner-key', { storageKey: key }), 10, new Date()),
    ]);
    for (const result of racing) {
      expect(result.status).toBe('rejected');
      const reason = (result as PromiseRejectedResult).reason;
      expect(violatesUnique(reason, 'file_uploads_storage_key_unique')).toBe(true);
      expect(violatesUnique(reason, 'another_constraint')).toBe(false);
    }
    expect((await repo.findUploadsByStorageKey([key, key, 'no/such/key'])).map((row) => row.id)).toEqual([first.id]);
    expect(await repo.findUploadsByStorageKey([])).toEqual([]);
  });

  test('status changes only from the states they name; concurrent ones cannot both win', async () => {
    const row = await repo.insertUpload(newUpload('owner-2'));
    const attempts = await Promise.all(Array.from({ length: 8 }, () => repo.transition(row.id, 'complete')));
    expect(attempts.filter(Boolean)).toHaveLength(1);
    expect(await repo.transition(row.id, 'abort')).toBeUndefined();
    expect((await repo.findUpload(row.id))?.status).toBe('completed');
  });

  test('progress only grows, moves pending to uploading, and leaves finished uploads alone', async () => {
    const row = await repo.insertUpload(newUpload('owner-3'));
    await repo.recordProgress(row.id, 50);
    await repo.recordProgress(row.id, 30);
    expect(await repo.findUpload(row.id)).toMatchObject({ status: 'uploading', bytesReceived: 50 });
    await repo.transition(row.id, 'fail', { error: 'S3 said no' });
    await repo.recordProgress(row.id, 60);
    expect(await repo.findUpload(row.id)).toMatchObject({ status: 'uploading', bytesReceived: 60, error: null });
    await repo.transition(row.id, 'abort');
    await repo.recordProgress(row.id, 90);
    expect(await repo.findUpload(row.id)).toMatchObject({ status: 'aborted', bytesReceived: 60 });
  });

  test('only one concurrent claim on an upload holds until it is released or runs out', async () => {
    const row = await repo.insertUpload(newUpload('owner-4'));
    const until = new Date(Date.now() + 60_000);
    const claims = await Promise.all(Array.from({ length: 5 }, () => repo.lockForCompletion(row.id, until)));
    expect(claims.filter(Boolean)).toHaveLength(1);
    await repo.unlockCompletion(row.id);
    expect(await repo.lockForCompletion(row.id, new Date(Date.now() - 1))).toBeDefined();
    // that claim already ran out: the next one takes over
    expect(await repo.lockForCompletion(row.id, until)).toBeDefined();
    // Only an open upload can be claimed.
    await repo.unlockCompletion(row.id);
    await repo.transition(row.id, 'complete');
    expect(await repo.lockForCompletion(row.id, until)).toBeUndefined();
  });

  test('an upload is inserted only while its user has fewer open uploads than the limit, even when racing', async () => {
    const user = `limited-${randomUUID()}`;
    const now = new Date();
    const racing = await Promise.all(
      Array.from({ length: 12 }, () => repo.insertUploadWithinLimit(newUpload(user), 3, now)),
    );
    expect(racing.filter((result) => 'created' in result)).toHaveLength(3);
    expect(racing.filter((result) => 'open' in result)).toEqual(Array.from({ length: 9 }, () => ({ open: 3 })));

    // Finished uploads and open ones past their expiry do not count; other users are not limited by this one.
    const [first] = await repo.listings.listOwnedUploads(user, { limit: 1 });
    await repo.transition(first!.id, 'complete');
    const expiring = await repo.insertUploadWithinLimit(
      newUpload(user, { expiresAt: new Date(now.getTime() + 1000) }),
      3,
      now,
    );
    expect(expiring).toEqual({ created: expect.objectContaining({ userId: user }) });
    expect(await repo.insertUploadWithinLimit(newUpload(user), 3, now)).toEqual({ open: 3 });
    expect(await repo.insertUploadWithinLimit(newUpload(user), 3, new Date(now.getTime() + 2000))).toEqual({
      created: expect.objectContaining({ userId: user }),
    });
    expect(await repo.insertUploadWithinLimit(newUpload(`${user}-other`), 3, now)).toEqual({
      created: expect.any(Object),
    });
  });

  test('a final upload is inserted within the same bounds; a refused one leaves its transaction whole, even racing', async () => {
    const user = `final-limited-${randomUUID()}`;
    const now = new Date();
    const partial = () => repo.insertUpload(newUpload(user, { concat: 'partial', status: 'completed' }));
    const final = async (partials: string[]) =>
      repo.insertFinalUpload({ ...newUpload(user, { concat: 'final' }), concatPartials: partials }, HOLDING_PARTIALS, {
        limit: 2,
        now,
        keptLimit: 0,
      });
    const partials = await Promise.all(Array.from({ length: 6 }, partial));
    const racing = await Promise.all([0, 2, 4].map((i) => final([partials[i]!.id, partials[i + 1]!.id])));
    expect(racing.filter((result) => 'created' in result)).toHaveLength(2);
    expect(racing.filter((result) => 'open' in result)).toEqual([{ open: 2 }]);
    // The refused final's partials are free: once a slot is, the same final is taken.
    const refused = [0, 2, 4].find((_, index) => 'open' in racing[index]!)!;
    const [taken] = racing.filter((result) => 'created' in result) as Array<{ created: { id: string } }>;
    await repo.transition(taken!.created.id, 'complete');
    expect(await final([partials[refused]!.id, partials[refused + 1]!.id])).toEqual({
      created: expect.objectContaining({ userId: user, concat: 'final' }),
    });
  });

  test('expiry: open uploads past it, unless a request holds one to complete it; a dry listing changes nothing', async () => {
    // Expired in the year 2000, and "now" is mid-2000: no other test's upload can be past that expiry.
    const expiresAt = new Date('2000-01-01T00:00:00Z');
    const now = new Date('2000-06-01T00:00:00Z');
    const user = `expiry-${randomUUID()}`;
    const stale = await repo.insertUpload(newUpload(user, { expiresAt, status: 'uploading' }));
    const completing = await repo.insertUpload(
      newUpload(user, { expiresAt, lockedUntil: new Date('2000-12-01T00:00:00Z') }),
    );
    const done = await repo.insertUpload(newUpload(user, { expiresAt, status: 'completed' }));
    const direct = await repo.insertUpload(newUpload(user, { expiresAt, protocol: 'direct' }));

    expect((await repo.retention.listExpiredOpenUploads('tus', now)).map((row) => row.id)).toEqual([stale.id]);
    expect((await repo.findUpload(stale.id))?.status).toBe('uploading');
    const expired = await repo.retention.expireIdleUploads([stale.id, completing.id, done.id], now);
    expect(expired.map((row) => [row.id, row.status])).toEqual([[stale.id, 'expired']]);
    const rows = await repo.findUploads([stale.id, completing.id, done.id, direct.id, 'not-a-uuid']);
    expect(new Map(rows.map((row) => [row.id, row.status]))).toEqual(
      new Map([
        [stale.id, 'expired'],
        [completing.id, 'pending'],
        [done.id, 'completed'],
        [direct.id, 'pending'],
      ]),
    );
    expect((await repo.retention.listExpiredOpenUploads('direct', now)).map((row) => row.id)).toEqual([direct.id]);
    expect((await repo.retention.expireIdleUploads([direct.id], now)).map((row) => row.id)).toEqual([direct.id]);
  });

  test('expiry measures idleness: progress and signed parts move it forward, never back', async () => {
    const row = await repo.insertUpload(newUpload('idle-1', { expiresAt: new Date('2000-01-01T00:00:00Z') }));
    const later = new Date('2000-01-02T00:00:00Z');
    expect(await repo.advanceStoredOffset(row.id, { from: 0, to: 0, staging: null, hashState: null })).toBe(false);
    await database.db.update(fileUploads).set({ storedOffset: 0 }).where(eq(fileUploads.id, row.id));
    expect(
      await repo.advanceStoredOffset(row.id, { from: 0, to: 10, staging: null, hashState: null, expiresAt: later }),
    ).toBe(true);
    expect((await repo.findUpload(row.id))?.expiresAt).toEqual(later);
    // Without a new expiry the offset moves and the expiry stays.
    await repo.advanceStoredOffset(row.id, { from: 10, to: 20, staging: null, hashState: null });
    expect((await repo.findUpload(row.id))?.expiresAt).toEqual(later);

    const direct = await repo.insertUpload(
      newUpload('idle-2', { protocol: 'direct', expiresAt: new Date('2000-01-01T00:00:00Z') }),
    );
    await repo.recordProgress(direct.id, 50, later);
    expect(await repo.findUpload(direct.id)).toMatchObject({ bytesReceived: 50, expiresAt: later });
    // No more bytes than recorded: no progress, the expiry stays.
    await repo.recordProgress(direct.id, 50, new Date('2000-01-03T00:00:00Z'));
    expect((await repo.findUpload(direct.id))?.expiresAt).toEqual(later);
    await repo.retention.extendExpiry(direct.id, new Date('1999-01-01T00:00:00Z'));
    expect((await repo.findUpload(direct.id))?.expiresAt).toEqual(later);
    await repo.retention.extendExpiry(direct.id, new Date('2000-02-01T00:00:00Z'));
    expect((await repo.findUpload(direct.id))?.expiresAt).toEqual(new Date('2000-02-01T00:00:00Z'));
  });

  // One PostgreSQL session per instance holds its tus locks; PGlite has one session, and its locks live in memory.
  // Declared for PostgreSQL only rather than skipped on PGlite: there is nothing of it to check there.
  (_name === 'PostgreSQL' ? test : () => {})(
    'an upload whose tus lock another session holds is not expired until it is released',
    async () => {
      const stale = await repo.insertUpload(newUpload('held-1', { expiresAt: new Date('2000-01-01T00:00:00Z') }));
      const now = new Date('2000-06-01T00:00:00Z');
      const writer = postgres(testDatabaseUrl(), { max: 1, onnotice: () => {} });
      try {
        // As the Postgres locker takes it, on its own session.
        await writer`select pg_advisory_lock(${uploadLockKey(stale.id).toString()}::bigint)`;
        expect(await repo.retention.expireIdleUploads([stale.id], now)).toEqual([]);
        expect((await repo.findUpload(stale.id))?.status).toBe('pending');
        await writer`select pg_advisory_unlock(${uploadLockKey(stale.id).toString()}::bigint)`;
        expect((await repo.retention.expireIdleUploads([stale.id], now)).map((row) => row.status)).toEqual(['expired']);
        // The statement's own lock went with its transaction: the writer can take it again.
        const [row] = await writer<
          { locked: boolean }[]
        >`select pg_try_advisory_lock(${uploadLockKey(stale.id).toString()}::bigint) as locked`;
        expect(row?.locked).toBe(true);
      } finally {
        await writer.end();
      }
    },
  );

  test('part rows are upserted (in batches) and listed in order', async () => {
    const row = await repo.insertUpload(newUpload('owner-5', { protocol: 'direct' }));
    const planned = Array.from({ length: 2500 }, (_, i) => ({
      partNumber: 2500 - i,
      size: 5,
      etag: null,
      status: 'pending' as const,
    }));
    await repo.parts.upsertParts(row.id, planned);
    await repo.parts.upsertParts(row.id, [{ partNumber: 7, size: 5, etag: '"abc"', status: 'stored' }]);
    const parts = await repo.parts.listParts(row.id);
    expect(parts).toHaveLength(2500);
    expect(parts[0]?.partNumber).toBe(1);
    expect(parts[6]).toMatchObject({ partNumber: 7, etag: '"abc"', status: 'stored' });
    expect(await repo.parts.countStoredParts(row.id)).toBe(1);
  });

  test('a user lists their uploads newest first, page by page, optionally by status', async () => {
    const user = `lister-${randomUUID()}`;
    const base = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      // two uploads share each timestamp: the id breaks the tie
      const createdAt = new Date(base + Math.floor(i / 2) * 1000);
      ids.push((await repo.insertUpload(newUpload(user, { createdAt, status: i === 4 ? 'completed' : 'pending' }))).id);
    }
    await repo.insertUpload(newUpload('someone-else'));
    const seen: string[] = [];
    let after: { createdAt: Date; id: string } | undefined;
    for (;;) {
      const page = await repo.listings.listOwnedUploads(user, { limit: 2, after });
      seen.push(...page.map((row) => row.id));
      const last = page.at(-1);
      if (page.length < 2 || !last) break;
      after = { createdAt: last.createdAt, id: last.id };
    }
    expect(seen).toHaveLength(5);
    expect(new Set(seen)).toEqual(new Set(ids));
    const all = await repo.listings.listOwnedUploads(user, { limit: 10 });
    expect(all.map((row) => row.id)).toEqual(seen);
    expect(all.map((row) => row.createdAt.getTime())).toEqual(
      [...all.map((row) => row.createdAt.getTime())].sort((a, b) => b - a),
    );
    expect(
      (await repo.listings.listOwnedUploads(user, { limit: 10, status: 'completed' })).map((row) => row.id),
    ).toEqual([ids[4]]);
  });

  describe('webhook events, written in the statement that makes the change', () => {
    let reporting: UploadRepository;
    beforeAll(() => {
      reporting = new UploadRepository(database.db, { webhookEvents: true });
    });
    const eventsOf = async (id: string) =>
      (
        await database.db.select().from(webhookOutbox).where(eq(webhookOutbox.uploadId, id)).orderBy(webhookOutbox.id)
      ).map((row) => row.event);

    test('one per status change: created, failed (once, however often it fails again), completed; none for progress or a change that did not happen', async () => {
      const row = await reporting.insertUpload(newUpload('events-1'));
      await reporting.recordProgress(row.id, 10);
      await reporting.transition(row.id, 'fail', { error: 'S3 down' });
      const again = await reporting.transition(row.id, 'fail', { error: 'S3 still down' });
      expect(again).toMatchObject({ status: 'failed', error: 'S3 still down' });
      await reporting.transition(row.id, 'progress');
      await reporting.transition(row.id, 'complete');
      expect(await reporting.transition(row.id, 'abort')).toBeUndefined();
      expect(await eventsOf(row.id)).toEqual(['upload.created', 'upload.failed', 'upload.completed']);
    });

    test('lost and rejected are upload.failed; aborted and expired their own; creation within a limit too', async () => {
      const ids: string[] = [];
      for (const name of ['lose', 'reject', 'abort'] as const) {
        const row = await reporting.insertUpload(newUpload('events-2'));
        await reporting.transition(row.id, name);
        ids.push(row.id);
      }
      expect(await Promise.all(ids.map(eventsOf))).toEqual([
        ['upload.created', 'upload.failed'],
        ['upload.created', 'upload.failed'],
        ['upload.created', 'upload.aborted'],
      ]);
      const limited = await reporting.insertUploadWithinLimit(newUpload(`events-${randomUUID()}`), 5, new Date());
      expect('created' in limited && (await eventsOf(limited.created.id))).toEqual(['upload.created']);
      const stale = await reporting.insertUpload(
        newUpload('events-3', { expiresAt: new Date('2001-01-01T00:00:00Z') }),
      );
      await reporting.retention.expireIdleUploads([stale.id], new Date('2001-06-01T00:00:00Z'));
      expect(await eventsOf(stale.id)).toEqual(['upload.created', 'upload.expired']);
    });

    test('an event keeps the upload as the change left it', async () => {
      const row = await reporting.insertUpload(newUpload('events-4', { metadata: { filename: 'f.bin', empty: null } }));
      await reporting.parts.upsertParts(row.id, [{ partNumber: 1, size: 100, etag: '"e"', status: 'stored' }]);
      const completed = await reporting.transition(row.id, 'complete', { completedAt: new Date(), bytesReceived: 100 });
      const [event] = await database.db
        .select()
        .from(webhookOutbox)
        .where(eq(webhookOutbox.uploadId, row.id))
        .orderBy(webhookOutbox.id)
        .offset(1);
      expect(event?.event).toBe('upload.completed');
      expect(uploadOfSnapshot(event!.payload)).toEqual({
        upload: { ...completed, staging: null, hashState: null },
        partsCount: 1,
      });
    });

    test('an undone creation takes its undelivered event along; a delivered one is followed by upload.aborted', async () => {
      const unsent = await reporting.insertUpload(newUpload('events-5'));
      await reporting.deleteUnusedUpload(unsent.id);
      expect(await eventsOf(unsent.id)).toEqual([]);

      const sent = await reporting.insertUpload(newUpload('events-5'));
      await database.db
        .update(webhookOutbox)
        .set({ deliveredAt: new Date() })
        .where(eq(webhookOutbox.uploadId, sent.id));
      await reporting.deleteUnusedUpload(sent.id);
      expect(await reporting.findUpload(sent.id)).toBeUndefined();
      const events = await database.db
        .select()
        .from(webhookOutbox)
        .where(eq(webhookOutbox.uploadId, sent.id))
        .orderBy(webhookOutbox.id);
      expect(events.map((event) => event.event)).toEqual(['upload.created', 'upload.aborted']);
      expect(uploadOfSnapshot(events[1]!.payload).upload).toMatchObject({ id: sent.id, status: 'aborted' });
    });

    test('without webhooks, nothing is written to the outbox', async () => {
      const row = await repo.insertUpload(newUpload('events-6'));
      await repo.transition(row.id, 'complete');
      expect(await eventsOf(row.id)).toEqual([]);
    });
  });
});
