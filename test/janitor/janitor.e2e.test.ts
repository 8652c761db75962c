/**
 * The janitor against real PostgreSQL and a real S3 gateway: uploads that went stale are expired and leave
 * nothing in S3, multipart uploads nobody needs are aborted (no row knows them, or their upload ended while S3
 * refused to let go), fresh and completed uploads are left alone, a dry run changes nothing, and two instances
 * never run it at once. The janitor sees every upload of its database, so this file has a database of its own.
 *
 * UPLOAD_EXPIRY cannot be under a minute in the configuration: stale uploads are made so by moving expires_at
 * into the past, and the janitor that judges unrecorded multipart uploads by age is built with a 2 s expiry and
 * a clock moved past it (JanitorDeps.now): nothing here waits for time to pass.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { JanitorDeps } from '../../src/janitor/deps.js';
import { JANITOR_LOCK_KEY, runJanitor } from '../../src/janitor/janitor.js';
import type { JanitorReport } from '../../src/janitor/report.js';
import { openJanitorDeps } from '../../src/janitor/wiring.js';
import { uploadLockKey } from '../../src/db/ids.js';
import {
  MiB,
  eventually,
  listMultipartUploads,
  randomData,
  serviceEnv,
  silentLogger,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
  isolatedServices,
} from '../helpers/harness.js';
import { holdingProxy, type HoldingProxy } from '../helpers/proxy.js';
import { createRawUpload, startTusUpload, uploadIdOf } from '../helpers/tus-client.js';

const ctx = isolatedServices('freight-janitor');

const SHORT_EXPIRY_MS = 2_000;

let freight: RunningFreight;
/** A janitor with UPLOAD_EXPIRY 2 s, and one with the server's 24 h. */
let short: { deps: JanitorDeps; close(): Promise<void> };
let long: { deps: JanitorDeps; close(): Promise<void> };

beforeAll(async () => {
  freight = await startFreight(
    serviceEnv(ctx.bucket.bucket, { DATABASE_URL: ctx.database.url, JANITOR_INTERVAL: '0' }),
  );
  short = await openJanitorDeps({ ...freight.config, uploadExpiryMs: SHORT_EXPIRY_MS }, silentLogger());
  long = await openJanitorDeps(freight.config, silentLogger());
});

afterAll(async () => {
  await short?.close();
  await long?.close();
  await freight?.close();
});

const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });
const statusOf = async (id: string) =>
  (await ctx.sql`select status from file_uploads where id = ${id}`)[0]?.status as string | undefined;
const makeStale = (id: string) =>
  ctx.sql`update file_uploads set expires_at = now() - interval '1 minute' where id = ${id}`;
/** The 2 s-expiry janitor, its clock moved past the expiry of anything made until now (as if it had passed). */
const afterShortExpiry = (): JanitorDeps => {
  const movedBy = SHORT_EXPIRY_MS + 1_500;
  return { ...short.deps, now: () => new Date(Date.now() + movedBy) };
};

/** The multipart uploads S3 holds under an upload's keys (its own, and its staging uploads). */
const openInS3 = async (id: string) =>
  (await listMultipartUploads(ctx.s3, ctx.bucket.bucket))
    .filter((upload) => upload.key.startsWith(id))
    .map((upload) => upload.key)
    .sort();
const stagedObjects = async (id: string) =>
  (await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket.bucket, Prefix: `${id}.staging/` }))).KeyCount ?? 0;
const objectExists = (key: string) =>
  ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket.bucket, Key: key })).then(
    () => true,
    () => false,
  );

/** A tus upload of 20 MiB with 15 MiB stored: part 1, and part 2 staged (a 6 MiB staging segment and a 1 MiB tail). */
async function tusWithStagedBytes(user: string) {
  const upload = await createRawUpload(freight.url, await auth(user), randomData(20 * MiB));
  expect((await upload.patch(0, 14 * MiB)).status).toBe(204);
  expect((await upload.patch(14 * MiB, 15 * MiB)).status).toBe(204);
  expect(await openInS3(upload.id)).toEqual([upload.id, `${upload.id}.staging/part-2`]);
  expect(await stagedObjects(upload.id)).toBe(1);
  return upload;
}

/** A direct upload of 12 MiB in 5 MiB parts with its first part sent. */
async function directWithPart(user: string) {
  const res = await fetch(`${freight.url}/api/multipart`, {
    method: 'POST',
    headers: { ...(await auth(user)), 'Content-Type': 'application/json' },
    body: JSON.stringify({ filename: 'd.bin', size: 12 * MiB, partSize: 5 * MiB }),
  });
  const created = (await res.json()) as { id: string; parts: Array<{ url: string }> };
  expect((await fetch(created.parts[0]!.url, { method: 'PUT', body: randomData(5 * MiB) })).status).toBe(200);
  expect(await openInS3(created.id)).toEqual([created.id]);
  return created.id;
}

async function completedDirect(user: string) {
  const res = await fetch(`${freight.url}/api/multipart`, {
    method: 'POST',
    headers: { ...(await auth(user)), 'Content-Type': 'application/json' },
    body: JSON.stringify({ filename: 'small.bin', size: 100 }),
  });
  const created = (await res.json()) as { id: string; parts: Array<{ url: string }> };
  const put = await fetch(created.parts[0]!.url, { method: 'PUT', body: randomData(100) });
  const done = await fetch(`${freight.url}/api/multipart/${created.id}/complete`, {
    method: 'POST',
    headers: { ...(await auth(user)), 'Content-Type': 'application/json' },
    body: JSON.stringify({ parts: [{ partNumber: 1, etag: put.headers.get('etag') }] }),
  });
  expect(done.status).toBe(200);
  return created.id;
}

async function createOrphan(key: string): Promise<string> {
  const created = await ctx.s3.send(new CreateMultipartUploadCommand({ Bucket: ctx.bucket.bucket, Key: key }));
  return created.UploadId!;
}

const actionsFor = (report: JanitorReport, id: string) =>
  report.actions.filter((action) =>
    action.kind === 'expire-upload'
      ? action.uploadId === id
      : action.kind === 'prune-webhook-events' || action.kind === 'prune-uploads' || action.kind === 'resume-finals'
        ? false
        : ('key' in action ? action.key : action.prefix).startsWith(id),
  );

describe('the janitor', () => {
  test('expires a stale tus upload: its multipart upload, staging upload and staged objects are gone (a dry run first changes nothing)', async () => {
    const upload = await tusWithStagedBytes(uniqueUser('idle'));
    await makeStale(upload.id);

    const dry = await runJanitor(long.deps, { dryRun: true });
    expect(dry).toMatchObject({ ran: true, dryRun: true });
    expect(dry.expired.tus).toBeGreaterThanOrEqual(1);
    expect(actionsFor(dry, upload.id)).toEqual([{ kind: 'expire-upload', uploadId: upload.id, protocol: 'tus' }]);
    expect(await statusOf(upload.id)).toBe('uploading');
    expect(await openInS3(upload.id)).toHaveLength(2);
    expect(await stagedObjects(upload.id)).toBe(1);

    const report = await runJanitor(long.deps);
    expect(report).toMatchObject({ ran: true, dryRun: false, failures: 0 });
    expect(report.expired.tus).toBeGreaterThanOrEqual(1);
    expect(actionsFor(report, upload.id)).toEqual([{ kind: 'expire-upload', uploadId: upload.id, protocol: 'tus' }]);
    expect(await statusOf(upload.id)).toBe('expired');
    expect(await openInS3(upload.id)).toEqual([]);
    expect(await stagedObjects(upload.id)).toBe(0);
  });

  test('expires a stale direct upload and aborts its multipart upload', async () => {
    const id = await directWithPart(uniqueUser('idle-direct'));
    await makeStale(id);
    // Its part reached S3 after anyone last counted (its client never listed it): the janitor counts that as
    // progress, and the upload lives one more UPLOAD_EXPIRY.
    const counted = await runJanitor(long.deps);
    expect(actionsFor(counted, id)).toEqual([]);
    expect(await statusOf(id)).toBe('uploading');
    await makeStale(id);
    const report = await runJanitor(long.deps);
    expect(report.expired.direct).toBeGreaterThanOrEqual(1);
    expect(actionsFor(report, id)).toEqual([{ kind: 'expire-upload', uploadId: id, protocol: 'direct' }]);
    expect(await statusOf(id)).toBe('expired');
    expect(await openInS3(id)).toEqual([]);
  });

  test("aborts multipart uploads no row knows once older than the expiry, and leaves keys that are not Freight's alone", async () => {
    const own = randomUUID();
    const staging = `${randomUUID()}.staging/part-3`;
    const foreign = `someone-else/${randomUUID()}`;
    const ownId = await createOrphan(own);
    const stagingId = await createOrphan(staging);
    await createOrphan(foreign);

    // Younger than the 24 h expiry: perhaps a creation under way, whose row learns the UploadId in a moment.
    const young = await runJanitor(long.deps);
    expect(actionsFor(young, own)).toEqual([]);
    expect(await openInS3(own)).toEqual([own]);

    const report = await runJanitor(afterShortExpiry());
    expect(report.orphanMultipartUploadsAborted).toBeGreaterThanOrEqual(2);
    expect(report.actions).toEqual(
      expect.arrayContaining([
        { kind: 'abort-multipart-upload', key: own, multipartUploadId: ownId, reason: 'no upload records it' },
        { kind: 'abort-multipart-upload', key: staging, multipartUploadId: stagingId, reason: 'no upload records it' },
      ]),
    );
    expect(await openInS3(own)).toEqual([]);
    expect(await openInS3(staging)).toEqual([]);
    expect(await openInS3('someone-else/')).toHaveLength(1);
  });

  test('leaves the multipart upload a writer opened but has not recorded yet while it holds the upload; aborts it once let go', async () => {
    const upload = await createRawUpload(freight.url, await auth(uniqueUser('slow-writer')), randomData(20 * MiB));
    // What a writer leaves between S3's answer to CreateMultipartUpload and the row learning its UploadId: on a
    // loaded database that can outlast a short UPLOAD_EXPIRY, while the writer holds the upload's tus lock.
    const opened = await createOrphan(upload.id);
    const writer = await ctx.sql.reserve();
    try {
      await writer`select pg_advisory_lock(${uploadLockKey(upload.id).toString()}::bigint)`;
      const held = await runJanitor(afterShortExpiry());
      expect(actionsFor(held, upload.id)).toEqual([]);
      expect(await openInS3(upload.id)).toEqual([upload.id]);
      await writer`select pg_advisory_unlock(${uploadLockKey(upload.id).toString()}::bigint)`;
    } finally {
      writer.release();
    }
    const letGo = await runJanitor(afterShortExpiry());
    expect(actionsFor(letGo, upload.id)).toEqual([
      {
        kind: 'abort-multipart-upload',
        key: upload.id,
        multipartUploadId: opened,
        reason: 'the upload is pending and does not record it',
      },
    ]);
    expect(await openInS3(upload.id)).toEqual([]);
  });

  test('finishes a termination whose S3 call failed: an aborted upload whose multipart uploads still exist loses them at once', async () => {
    const upload = await tusWithStagedBytes(uniqueUser('quitter'));
    const id = await directWithPart(uniqueUser('quitter'));
    // What a DELETE leaves when S3 refuses after the row was marked: the row ended, S3 still holds everything.
    await ctx.sql`update file_uploads set status = 'aborted' where id in ${ctx.sql([upload.id, id])}`;

    // No waiting for the expiry: an upload that ended needs none of it.
    const report = await runJanitor(long.deps);
    expect(actionsFor(report, upload.id)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'abort-multipart-upload', key: upload.id, reason: 'the upload is aborted' }),
        expect.objectContaining({ kind: 'abort-multipart-upload', key: `${upload.id}.staging/part-2` }),
        { kind: 'remove-staged-objects', prefix: `${upload.id}.staging/`, objects: 1, reason: 'the upload is aborted' },
      ]),
    );
    expect(actionsFor(report, id)).toEqual([expect.objectContaining({ kind: 'abort-multipart-upload', key: id })]);
    expect(await openInS3(upload.id)).toEqual([]);
    expect(await stagedObjects(upload.id)).toBe(0);
    expect(await openInS3(id)).toEqual([]);
    expect(await statusOf(upload.id)).toBe('aborted');
  });

  test('leaves fresh and completed uploads alone, whatever their age', async () => {
    const user = uniqueUser('busy');
    const fresh = await tusWithStagedBytes(user);
    const freshDirect = await directWithPart(user);
    const data = randomData(9 * MiB);
    const doneId = uploadIdOf(
      await startTusUpload(data, { endpoint: `${freight.url}/files/`, headers: await auth(user), chunkSize: 4 * MiB })
        .done,
    );
    const doneDirect = await completedDirect(user);

    const report = await runJanitor(afterShortExpiry());
    for (const id of [fresh.id, freshDirect, doneId, doneDirect]) expect(actionsFor(report, id)).toEqual([]);
    expect(await statusOf(fresh.id)).toBe('uploading');
    expect(await openInS3(fresh.id)).toEqual([fresh.id, `${fresh.id}.staging/part-2`]);
    expect(await stagedObjects(fresh.id)).toBe(1);
    expect(await statusOf(freshDirect)).toBe('pending');
    expect(await openInS3(freshDirect)).toEqual([freshDirect]);
    expect([await statusOf(doneId), await statusOf(doneDirect)]).toEqual(['completed', 'completed']);
    expect([await objectExists(doneId), await objectExists(doneDirect)]).toEqual([true, true]);

    // The stale upload is resumable still: the rest completes it.
    expect((await fresh.patch(15 * MiB, 20 * MiB)).status).toBe(204);
    expect(await statusOf(fresh.id)).toBe('completed');
  });

  test('removes staged objects a completed upload left behind (its completion could not remove them)', async () => {
    const user = uniqueUser('messy');
    const upload = await createRawUpload(freight.url, await auth(user), randomData(100));
    expect((await upload.patch(0, 100)).status).toBe(204);
    await ctx.s3.send(
      new PutObjectCommand({ Bucket: ctx.bucket.bucket, Key: `${upload.id}.staging/tail-0-5`, Body: 'hello' }),
    );
    const report = await runJanitor(long.deps);
    expect(actionsFor(report, upload.id)).toEqual([
      { kind: 'remove-staged-objects', prefix: `${upload.id}.staging/`, objects: 1, reason: 'the upload is completed' },
    ]);
    expect(await stagedObjects(upload.id)).toBe(0);
    expect(await objectExists(upload.id)).toBe(true);
  });

  test('a dry run reports what a run would do and changes nothing', async () => {
    const upload = await tusWithStagedBytes(uniqueUser('dreamer'));
    await ctx.sql`update file_uploads set status = 'expired' where id = ${upload.id}`;
    const orphan = randomUUID();
    await createOrphan(orphan);
    const later = afterShortExpiry();

    const dry = await runJanitor(later, { dryRun: true });
    const dryActions = [...actionsFor(dry, upload.id), ...actionsFor(dry, orphan)];
    expect(dryActions).toHaveLength(4);
    expect(await openInS3(upload.id)).toHaveLength(2);
    expect(await stagedObjects(upload.id)).toBe(1);
    expect(await openInS3(orphan)).toEqual([orphan]);

    const real = await runJanitor(later);
    expect([...actionsFor(real, upload.id), ...actionsFor(real, orphan)]).toEqual(dryActions);
    expect(await openInS3(upload.id)).toEqual([]);
    expect(await openInS3(orphan)).toEqual([]);
  });
});

describe('the janitor on several instances', () => {
  let proxy: HoldingProxy;
  let held: RunningFreight;

  beforeAll(async () => {
    const env = serviceEnv(ctx.bucket.bucket, { DATABASE_URL: ctx.database.url, JANITOR_INTERVAL: '0' });
    proxy = await holdingProxy(env.S3_ENDPOINT!);
    held = await startFreight({ ...env, S3_ENDPOINT: proxy.url });
  });
  afterAll(async () => {
    await proxy?.release();
    await held?.close();
    await proxy?.down();
  });

  // Advisory locks are per database, but pg_locks lists every database's: the Freights of other test files run
  // their janitors (same key) on their own databases, and one of theirs must not pass for this one's.
  const lockHeld = async () =>
    (
      await ctx.sql`select count(*)::int as n from pg_locks
        where locktype = 'advisory' and objsubid = 2 and objid = ${JANITOR_LOCK_KEY} and granted
          and database = (select oid from pg_database where datname = current_database())`
    )[0]!.n > 0;

  test('two instances never run it at once: while one runs, the other does nothing; then it runs again', async () => {
    const upload = await tusWithStagedBytes(uniqueUser('shared'));
    await ctx.sql`update file_uploads set status = 'aborted' where id = ${upload.id}`;

    // The first instance takes the lock, then hangs on S3 (its relay holds every byte).
    await proxy.hold();
    const first = held.app.janitor.run();
    await eventually(async () => ((await lockHeld()) ? true : undefined));

    const second = await freight.app.janitor.run();
    expect(second).toMatchObject({ ran: false, orphanMultipartUploadsAborted: 0 });
    expect(await openInS3(upload.id)).toHaveLength(2);

    await proxy.release();
    const report = await first;
    expect(report.ran).toBe(true);
    expect(actionsFor(report, upload.id)).toHaveLength(3);
    expect(await openInS3(upload.id)).toEqual([]);
    expect(await lockHeld()).toBe(false);

    // The lock is free again: the other instance runs (and finds nothing of this upload left).
    const after = await freight.app.janitor.run();
    expect(after.ran).toBe(true);
    expect(actionsFor(after, upload.id)).toEqual([]);
  });
});
