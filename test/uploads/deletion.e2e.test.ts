/**
 * DELETE on both paths of an upload that ended without the owner's say: expired (its time is up) or failed for
 * good (lost, rejected) is 204, and what S3 still holds of it is removed; HEAD and PATCH of it stay 410. An
 * upload still open but failed (its last attempt failed in storage) is aborted by a DELETE like any open one, and
 * a completed tus upload is terminated with its object (tus termination covers completed uploads).
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { describe, expect, test } from 'vitest';
import {
  MiB,
  errorCodeOf,
  freightOnS3,
  listMultipartUploads,
  randomData,
  tokenFor,
  uniqueUser,
} from '../helpers/harness.js';
import { createRawUpload } from '../helpers/tus-client.js';

const ctx = freightOnS3('freight-deletion');

const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });
const tusHeaders = async (user: string) => ({ ...(await auth(user)), 'Tus-Resumable': '1.0.0' });

const statusOf = async (id: string) =>
  (await ctx.sql`select status from file_uploads where id = ${id}`)[0]!.status as string;
const setStatus = (id: string, status: string) => ctx.sql`update file_uploads set status = ${status} where id = ${id}`;
const expireNow = (id: string) =>
  ctx.sql`update file_uploads set expires_at = now() - interval '1 minute' where id = ${id}`;
/** The multipart uploads S3 holds of an upload: its own and (tus) the staging upload of its part under way. */
const openInS3 = async (id: string) =>
  (await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).filter((upload) => upload.key.startsWith(id));

const objectsUnder = async (id: string) =>
  ((await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket.bucket, Prefix: id }))).Contents ?? []).map(
    (object) => object.Key,
  );

const stagedObjects = async (id: string) =>
  (await ctx.s3.send(new ListObjectsV2Command({ Bucket: ctx.bucket.bucket, Prefix: `${id}.staging/` }))).KeyCount ?? 0;

/** A tus upload with 15 MiB stored: its first 8 MiB part, and a 6 MiB segment and a 1 MiB tail of the second staged. */
async function tusWithBytes(user: string) {
  const data = randomData(20 * MiB);
  const upload = await createRawUpload(ctx.freight.url, await auth(user), data);
  expect((await upload.patch(0, 14 * MiB)).status).toBe(204);
  expect((await upload.patch(14 * MiB, 15 * MiB)).status).toBe(204);
  expect((await openInS3(upload.id)).map((open) => open.key).sort()).toEqual([
    upload.id,
    `${upload.id}.staging/part-2`,
  ]);
  expect(await stagedObjects(upload.id)).toBeGreaterThan(0);
  return upload;
}

async function directWithPart(user: string) {
  const res = await fetch(`${ctx.freight.url}/api/multipart`, {
    method: 'POST',
    headers: { ...(await auth(user)), 'Content-Type': 'application/json' },
    body: JSON.stringify({ filename: 'd.bin', size: 12 * MiB, partSize: 5 * MiB }),
  });
  const created = (await res.json()) as { id: string; parts: Array<{ url: string }> };
  expect((await fetch(created.parts[0]!.url, { method: 'PUT', body: randomData(5 * MiB) })).status).toBe(200);
  expect((await openInS3(created.id)).length).toBe(1);
  return created.id;
}

const deleteDirect = async (user: string, id: string) =>
  fetch(`${ctx.freight.url}/api/multipart/${id}`, { method: 'DELETE', headers: await auth(user) });

describe('tus: DELETE of an upload that ended', () => {
  test('an expired upload: HEAD and PATCH are 410, DELETE is 204 (twice) and its multipart upload is gone', async () => {
    const user = uniqueUser('late');
    const upload = await tusWithBytes(user);
    await expireNow(upload.id);
    const head = await fetch(upload.url, { method: 'HEAD', headers: await tusHeaders(user) });
    expect(head.status).toBe(410);
    const patch = await upload.patch(15 * MiB, 16 * MiB);
    expect(patch.status).toBe(410);
    expect(await errorCodeOf(patch)).toBe('ERR_UPLOAD_GONE');
    expect(await statusOf(upload.id)).toBe('expired');

    for (let i = 0; i < 2; i++) {
      expect((await fetch(upload.url, { method: 'DELETE', headers: await tusHeaders(user) })).status).toBe(204);
    }
    expect(await statusOf(upload.id)).toBe('expired');
    expect(await openInS3(upload.id)).toEqual([]);
    expect(await stagedObjects(upload.id)).toBe(0);
    expect((await fetch(upload.url, { method: 'HEAD', headers: await tusHeaders(user) })).status).toBe(410);
  });

  test('an open upload past its expiry that nobody touched since: DELETE is 204 and expires it', async () => {
    const user = uniqueUser('later');
    const upload = await tusWithBytes(user);
    await expireNow(upload.id);
    expect((await fetch(upload.url, { method: 'DELETE', headers: await tusHeaders(user) })).status).toBe(204);
    expect(await statusOf(upload.id)).toBe('expired');
    expect(await openInS3(upload.id)).toEqual([]);
  });

  test('a lost or failed upload: DELETE is 204 (a lost one stays lost, a failed one is aborted)', async () => {
    const user = uniqueUser('unlucky');
    for (const [status, after] of [
      ['lost', 'lost'],
      ['rejected', 'rejected'],
      ['failed', 'aborted'],
    ]) {
      const upload = await tusWithBytes(user);
      await setStatus(upload.id, status!);
      expect((await fetch(upload.url, { method: 'DELETE', headers: await tusHeaders(user) })).status).toBe(204);
      expect(await statusOf(upload.id)).toBe(after);
      expect(await openInS3(upload.id)).toEqual([]);
    }
  });

  test('a terminated upload stays gone to a second DELETE (410); a completed one is terminated with its object', async () => {
    const user = uniqueUser('tidy');
    const upload = await tusWithBytes(user);
    expect((await fetch(upload.url, { method: 'DELETE', headers: await tusHeaders(user) })).status).toBe(204);
    const again = await fetch(upload.url, { method: 'DELETE', headers: await tusHeaders(user) });
    expect(again.status).toBe(410);
    expect(await errorCodeOf(again)).toBe('ERR_UPLOAD_GONE');

    const done = await createRawUpload(ctx.freight.url, await auth(user), randomData(10));
    expect((await done.patch(0, 10)).status).toBe(204);
    expect(await statusOf(done.id)).toBe('completed');
    expect(await objectsUnder(done.id)).toEqual([done.id]);
    // termination: "the Server SHOULD free associated resources and MUST respond with the 204 No Content status"
    // for "both, completed and unfinished, uploads".
    const terminated = await fetch(done.url, { method: 'DELETE', headers: await tusHeaders(user) });
    expect(terminated.status).toBe(204);
    expect(await statusOf(done.id)).toBe('aborted');
    expect(await objectsUnder(done.id)).toEqual([]);
    const after = await fetch(done.url, { method: 'DELETE', headers: await tusHeaders(user) });
    expect(after.status).toBe(410);
  });

  test("another user's expired upload is still 404", async () => {
    const upload = await tusWithBytes(uniqueUser('owner'));
    await expireNow(upload.id);
    expect(
      (await fetch(upload.url, { method: 'DELETE', headers: await tusHeaders(uniqueUser('stranger')) })).status,
    ).toBe(404);
    expect((await openInS3(upload.id)).length).toBe(2);
  });
});

describe('direct: DELETE of an upload that ended', () => {
  test('an expired upload: its parts are 410, DELETE is 204 (twice) and its multipart upload is gone', async () => {
    const user = uniqueUser('slow');
    const id = await directWithPart(user);
    await expireNow(id);
    const parts = await fetch(`${ctx.freight.url}/api/multipart/${id}/parts`, { headers: await auth(user) });
    expect(parts.status).toBe(410);
    expect(await statusOf(id)).toBe('expired');
    for (let i = 0; i < 2; i++) expect((await deleteDirect(user, id)).status).toBe(204);
    expect(await statusOf(id)).toBe('expired');
    expect(await openInS3(id)).toEqual([]);
  });

  test('an open upload past its expiry: DELETE is 204 and expires it', async () => {
    const user = uniqueUser('slower');
    const id = await directWithPart(user);
    await expireNow(id);
    expect((await deleteDirect(user, id)).status).toBe(204);
    expect(await statusOf(id)).toBe('expired');
    expect(await openInS3(id)).toEqual([]);
  });

  test('a lost or failed upload: DELETE is 204 (a lost one stays lost, a failed one is aborted)', async () => {
    const user = uniqueUser('unluckier');
    for (const [status, after] of [
      ['lost', 'lost'],
      ['failed', 'aborted'],
    ]) {
      const id = await directWithPart(user);
      await setStatus(id, status!);
      expect((await deleteDirect(user, id)).status).toBe(204);
      expect(await statusOf(id)).toBe(after);
      expect(await openInS3(id)).toEqual([]);
    }
  });

  test('an expired Companion upload: its DELETE answers {} and removes its multipart upload', async () => {
    const user = uniqueUser('uppy');
    const res = await fetch(`${ctx.freight.url}/s3/multipart`, {
      method: 'POST',
      headers: { ...(await auth(user)), 'Content-Type': 'application/json' },
      body: JSON.stringify({ filename: 'u.bin', type: 'application/octet-stream' }),
    });
    const { key, uploadId } = (await res.json()) as { key: string; uploadId: string };
    await expireNow(key);
    const deleted = await fetch(`${ctx.freight.url}/s3/multipart/${encodeURIComponent(uploadId)}?key=${key}`, {
      method: 'DELETE',
      headers: await auth(user),
    });
    expect(deleted.status).toBe(200);
    expect(await deleted.json()).toEqual({});
    expect(await statusOf(key)).toBe('expired');
    expect(await openInS3(key)).toEqual([]);
  });
});
