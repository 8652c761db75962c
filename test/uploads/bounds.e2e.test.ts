/**
 * What one user can make the server keep is bounded: metadata by size and shape on every path (tus
 * Upload-Metadata, the direct API, Companion's routes), rows by USER_MAX_UPLOADS (zero-length creations and ended
 * uploads count too), and ended rows are pruned by the janitor after UPLOAD_RETENTION, with their parts, their
 * webhook events and whatever S3 still holds under their keys; completed rows are kept. Real PostgreSQL (a database
 * of its own: the janitor prunes every row of its database) and S3; the janitor's clock is moved, not waited for.
 */
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  errorCodeOf,
  serviceEnv,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
  isolatedServices,
} from '../helpers/harness.js';
import { createRawUpload } from '../helpers/tus-client.js';

const ctx = isolatedServices('freight-bounds');

const KiB = 1024;
const DAY = 86_400_000;
/** USER_MAX_UPLOADS of this server. */
const KEPT = 3;

let shiftMs = 0;
const now = () => new Date(Date.now() + shiftMs);

let freight: RunningFreight;

beforeAll(async () => {
  freight = await startFreight(
    serviceEnv(ctx.bucket.bucket, {
      DATABASE_URL: ctx.database.url,
      JANITOR_INTERVAL: '0',
      USER_MAX_UPLOADS: String(KEPT),
      // Webhooks on, so that uploads have events in the outbox (nobody listens: they stay undelivered).
      WEBHOOK_URL: 'http://127.0.0.1:9/freight-hooks',
      WEBHOOK_SECRET: 'w'.repeat(32),
      // The state changes' events, not progress (on by default, every 30 s of the moved clock).
      WEBHOOK_PROGRESS_INTERVAL: '0',
    }),
    { now },
  );
});
afterAll(async () => {
  await freight?.close();
});

const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });
const base64 = (text: string) => Buffer.from(text).toString('base64');

async function tusCreate(user: string, metadata?: string, length = 10): Promise<Response> {
  return fetch(`${freight.url}/files/`, {
    method: 'POST',
    headers: {
      ...(await auth(user)),
      'Tus-Resumable': '1.0.0',
      'Upload-Length': String(length),
      ...(metadata === undefined ? {} : { 'Upload-Metadata': metadata }),
    },
  });
}

async function postJson(user: string, route: string, body: unknown): Promise<Response> {
  return fetch(`${freight.url}${route}`, {
    method: 'POST',
    headers: { ...(await auth(user)), 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const directCreate = (user: string, metadata: unknown) =>
  postJson(user, '/api/multipart', { filename: 'a.bin', size: 10, metadata });
const companionCreate = (user: string, metadata: unknown) =>
  postJson(user, '/s3/multipart', { filename: 'a.bin', type: 'application/octet-stream', metadata });

describe('metadata', () => {
  test('tus: a value over METADATA_MAX_VALUE_SIZE (4 KiB) or all of them over METADATA_MAX_SIZE (8 KiB) is 400; within them, 201', async () => {
    const user = uniqueUser('meta-tus');
    const long = await tusCreate(user, `filename ${base64('a.bin')},note ${base64('x'.repeat(4 * KiB + 1))}`);
    expect(long.status).toBe(400);
    expect(await long.text()).toMatch(/metadata value of "note" has 4097 bytes.*METADATA_MAX_VALUE_SIZE/);
    const many = await tusCreate(user, ['a', 'b', 'c'].map((key) => `${key} ${base64('y'.repeat(3 * KiB))}`).join(','));
    expect(many.status).toBe(400);
    expect(await many.text()).toMatch(/METADATA_MAX_SIZE/);
    // Within the bounds it is kept as sent (a key without a value as an empty one).
    const fine = await tusCreate(user, `filename ${base64('a.bin')},note ${base64('x'.repeat(4 * KiB))},flag`);
    expect(fine.status).toBe(201);
    const [row] = await ctx.sql`select metadata from file_uploads where user_id = ${user}`;
    expect(row?.metadata).toEqual({ filename: 'a.bin', note: 'x'.repeat(4 * KiB), flag: '' });
  });

  test('direct API: strings (and null) within the bounds are kept; nested objects, arrays, numbers and oversize values are 400', async () => {
    const user = uniqueUser('meta-direct');
    for (const metadata of [{ nested: { a: 'b' } }, { list: ['a'] }, { count: 3 }, { yes: true }]) {
      const res = await directCreate(user, metadata);
      expect(res.status, JSON.stringify(metadata)).toBe(400);
      expect(await errorCodeOf(res)).toBe('ERR_BAD_REQUEST');
    }
    const oversize = await directCreate(user, { note: 'é'.repeat(2 * KiB + 1) });
    expect(oversize.status).toBe(400);
    expect(await oversize.text()).toMatch(/4098 bytes/);
    const fine = await directCreate(user, { note: 'é'.repeat(2 * KiB), relativePath: null });
    expect(fine.status).toBe(201);
    const { id } = (await fine.json()) as { id: string };
    expect((await ctx.sql`select metadata from file_uploads where id = ${id}`)[0]?.metadata).toEqual({
      note: 'é'.repeat(2 * KiB),
      relativePath: null,
    });
  });

  test("Companion: a 100 KiB value, deeply nested metadata and non-string values are 400, never stored; Uppy's own metadata is", async () => {
    const user = uniqueUser('meta-companion');
    const depth = 100_000;
    const deep = `{"filename":"a.bin","metadata":{"k":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    const refused = [
      await companionCreate(user, { note: 'z'.repeat(100 * KiB) }),
      await postJson(user, '/s3/multipart', deep),
      await companionCreate(user, { nested: { deeper: { deepest: 'x' } } }),
      await companionCreate(user, { size: 12 }),
    ];
    expect(refused.map((res) => res.status)).toEqual([400, 400, 400, 400]);
    expect(Number((await ctx.sql`select count(*) from file_uploads where user_id = ${user}`)[0]?.count)).toBe(0);
    const uppy = await companionCreate(user, { name: 'a.bin', type: 'application/octet-stream', relativePath: null });
    expect(uppy.status).toBe(200);
  });
});

describe('rows kept per user (USER_MAX_UPLOADS) and pruning (UPLOAD_RETENTION)', () => {
  test('zero-length creations count: the fourth upload of a user is 429 on every path, saying why', async () => {
    const user = uniqueUser('zero');
    for (let i = 0; i < KEPT; i++) expect((await tusCreate(user, undefined, 0)).status).toBe(201);
    expect((await ctx.sql`select status from file_uploads where user_id = ${user}`).map((row) => row.status)).toEqual([
      'completed',
      'completed',
      'completed',
    ]);
    const tus = await tusCreate(user, undefined, 0);
    expect(tus.status).toBe(429);
    expect(await tus.text()).toMatch(
      /^ERR_TOO_MANY_UPLOADS_KEPT: too many uploads kept: you have 3 .* keeps 3 per user/,
    );
    const direct = await directCreate(user, undefined);
    expect(direct.status).toBe(429);
    expect(await errorCodeOf(direct)).toBe('ERR_TOO_MANY_UPLOADS_KEPT');
    // Another user is not held back.
    expect((await tusCreate(uniqueUser('other'), undefined, 0)).status).toBe(201);
  });

  test('ended uploads count until the janitor prunes them UPLOAD_RETENTION after they ended, with their parts, events and objects; completed ones stay', async () => {
    const user = uniqueUser('pruned');
    const headers = await auth(user);
    // One completed, one aborted with a stored part, one expired with an object left under its key.
    const done = await createRawUpload(freight.url, headers, Buffer.from('hello') as Buffer<ArrayBuffer>);
    expect((await done.patch(0, 5)).status).toBe(204);
    const data = Buffer.alloc(6 * 1024 * 1024, 7) as Buffer<ArrayBuffer>;
    const aborted = await createRawUpload(freight.url, headers, Buffer.concat([data, data]) as Buffer<ArrayBuffer>);
    expect((await aborted.patch(0, data.length)).status).toBe(204);
    expect(
      (await fetch(aborted.url, { method: 'DELETE', headers: { ...headers, 'Tus-Resumable': '1.0.0' } })).status,
    ).toBe(204);
    const expired = await createRawUpload(freight.url, headers, data);
    await ctx.sql`update file_uploads set status = 'expired' where id = ${expired.id}`;
    await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket.bucket, Key: expired.id, Body: 'left behind' }));
    expect((await tusCreate(user)).status).toBe(429);

    const ids = [done.id, aborted.id, expired.id];
    await ctx.sql`update webhook_outbox set delivered_at = now() where upload_id = ${aborted.id} and event = 'upload.created'`;
    const eventsOf = async (id: string) =>
      (
        await ctx.sql`select event, delivered_at is not null as delivered from webhook_outbox where upload_id = ${id} order by id`
      ).map((row) => `${row.event}${row.delivered ? ' (delivered)' : ''}`);
    expect(await eventsOf(aborted.id)).toEqual(['upload.created (delivered)', 'upload.aborted']);

    // A day before the retention has passed: nothing goes.
    shiftMs = 29 * DAY;
    expect((await freight.app.janitor.run()).uploadsPruned).toBe(0);
    const kept = async () => (await ctx.sql`select id, status from file_uploads where id in ${ctx.sql(ids)}`).length;
    expect(await kept()).toBe(3);
    // (The other tests' open uploads expired in that run: they are pruned beside these, so counts are at least.)
    shiftMs = 31 * DAY;
    expect((await freight.app.janitor.run({ dryRun: true })).uploadsPruned).toBeGreaterThanOrEqual(2);
    expect(await kept()).toBe(3);
    const report = await freight.app.janitor.run();
    expect(report.uploadsPruned).toBeGreaterThanOrEqual(2);
    expect(report.actions).toContainEqual({ kind: 'prune-uploads', uploads: report.uploadsPruned });
    expect(report.failures).toBe(0);

    const left = await ctx.sql`select id, status from file_uploads where id in ${ctx.sql(ids)}`;
    expect(left.map((row) => [row.id, row.status])).toEqual([[done.id, 'completed']]);
    expect(Number((await ctx.sql`select count(*) from upload_parts where upload_id = ${aborted.id}`)[0]?.count)).toBe(
      0,
    );
    // The delivered event went with its upload; the one still to deliver stays (its payload carries the upload).
    expect(await eventsOf(aborted.id)).toEqual(['upload.aborted']);
    const objectExists = (key: string) =>
      ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket.bucket, Key: key })).then(
        () => true,
        () => false,
      );
    expect([await objectExists(done.id), await objectExists(expired.id)]).toEqual([true, false]);
    // The user has room again.
    expect((await tusCreate(user)).status).toBe(201);
  });
});
