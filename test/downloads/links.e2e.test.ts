/**
 * Download links (POST /api/uploads/:id/download-link): a URL for one completed upload that works without a
 * token, for PRESIGN_EXPIRES. On S3 the presigned GET that S3 itself checks; on the local file store a signed link
 * that Freight serves with ranges. Each opens its own upload only, and stops working when it expires: the clock the
 * server signs with is moved instead of waiting.
 */
import { afterAll, afterEach, beforeAll, describe, expect, inject, test } from 'vitest';
import { attachment } from '../../src/http/content-disposition.js';
import {
  JWT_SECRET,
  MiB,
  errorCodeOf,
  freightOnS3,
  randomData,
  sha256,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../helpers/harness.js';
import { testDatabaseUrl } from '../helpers/file-database.js';

const TUS = { 'Tus-Resumable': '1.0.0' };

/** The server's clock: the real one, moved by `offsetMs`. */
const clock = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
afterEach(() => {
  clock.offsetMs = 0;
});

const bearer = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });
const bytesOf = async (res: Response) => Buffer.from(await res.arrayBuffer());

/** A completed tus upload of `data` named `name`; its id. */
async function completedUpload(base: string, user: string, name: string, data: Buffer<ArrayBuffer>): Promise<string> {
  const auth = await bearer(user);
  const created = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: {
      ...TUS,
      ...auth,
      'Upload-Length': String(data.length),
      'Upload-Metadata': `filename ${Buffer.from(name).toString('base64')}`,
    },
  });
  expect(created.status).toBe(201);
  const url = created.headers.get('location')!;
  const patched = await fetch(url, {
    method: 'PATCH',
    headers: { ...TUS, ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: data,
  });
  expect(patched.status).toBe(204);
  return url.split('/').pop()!;
}

async function linkFor(base: string, user: string, id: string): Promise<Response> {
  return fetch(`${base}/api/uploads/${id}/download-link`, { method: 'POST', headers: await bearer(user) });
}

async function link(base: string, user: string, id: string): Promise<{ url: string; expiresAt: string }> {
  const res = await linkFor(base, user, id);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { url: string; expiresAt: string };
}

describe('on S3: the link is a presigned GET of that one object', () => {
  const ctx = freightOnS3('freight-links', { PRESIGN_EXPIRES: '5m' }, { now: clock.now });

  test('S3 answers it without a token (the bytes, ranges, the name), for PRESIGN_EXPIRES; for its owner only', async () => {
    const user = uniqueUser('link');
    const data = randomData(5 * MiB + 11);
    const id = await completedUpload(ctx.freight.url, user, 'report 報告.bin', data);
    const before = Date.now();
    const { url, expiresAt } = await link(ctx.freight.url, user, id);
    const signed = new URL(url);
    expect(signed.origin).toBe(inject('s3').endpoint);
    expect(signed.searchParams.get('X-Amz-Expires')).toBe('300');
    expect(Date.parse(expiresAt) - before).toBeGreaterThanOrEqual(299_000);
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(300_000);

    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe(attachment('report 報告.bin'));
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(sha256(await bytesOf(res))).toBe(sha256(data));
    const ranged = await fetch(url, { headers: { Range: 'bytes=5242880-' } });
    expect(ranged.status).toBe(206);
    expect((await bytesOf(ranged)).equals(data.subarray(5 * MiB))).toBe(true);

    // Another user, an unknown id, no token: no link.
    expect((await linkFor(ctx.freight.url, uniqueUser('other'), id)).status).toBe(404);
    const anonymous = await fetch(`${ctx.freight.url}/api/uploads/${id}/download-link`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
  });

  test('it names only its object: the same signature on another upload is refused by S3', async () => {
    const user = uniqueUser('link');
    const mine = await completedUpload(ctx.freight.url, user, 'a.bin', randomData(1000));
    const other = await completedUpload(ctx.freight.url, user, 'b.bin', randomData(1000));
    const { url } = await link(ctx.freight.url, user, mine);
    const swapped = new URL(url);
    swapped.pathname = swapped.pathname.replace(mine, other);
    expect(swapped.href).not.toBe(url);
    expect((await fetch(swapped)).status).toBe(403);
  });

  test('it expires: a link signed longer ago than PRESIGN_EXPIRES is refused by S3', async () => {
    const user = uniqueUser('link');
    const id = await completedUpload(ctx.freight.url, user, 'old.bin', randomData(1000));
    // Signed 4 minutes ago: still good. Signed 6 minutes ago: S3 refuses it (RGW says AccessDenied, no reason).
    clock.offsetMs = -(300 - 60) * 1000;
    expect((await fetch((await link(ctx.freight.url, user, id)).url)).status).toBe(200);
    clock.offsetMs = -(300 + 60) * 1000;
    const { url, expiresAt } = await link(ctx.freight.url, user, id);
    expect(Date.parse(expiresAt)).toBeLessThan(Date.now());
    const res = await fetch(url);
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(/AccessDenied|expired/i);
  });

  test('an upload that is not complete has no link yet (409)', async () => {
    const user = uniqueUser('link');
    const created = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, ...(await bearer(user)), 'Upload-Length': '10' },
    });
    const id = created.headers.get('location')!.split('/').pop()!;
    const res = await linkFor(ctx.freight.url, user, id);
    expect(res.status).toBe(409);
    expect(await errorCodeOf(res)).toBe('ERR_UPLOAD_CONFLICT');
  });
});

describe('on the local file store: a link signed by Freight, served with ranges', () => {
  let freight: RunningFreight;
  beforeAll(async () => {
    freight = await startFreight(
      { DATABASE_URL: testDatabaseUrl(), AUTH_JWT_SECRET: JWT_SECRET, LOG_LEVEL: 'silent', PRESIGN_EXPIRES: '10m' },
      { now: clock.now },
    );
  });
  afterAll(() => freight?.close());

  test('the exact bytes without a token, as an attachment, with ranges and HEAD', async () => {
    const user = uniqueUser('link');
    const data = randomData(2 * MiB + 5);
    const id = await completedUpload(freight.url, user, 'two\r\nlines.bin', data);
    const before = Date.now();
    const { url, expiresAt } = await link(freight.url, user, id);
    expect(url).toMatch(new RegExp(`^${freight.url}/downloads/${id}\\?expires=\\d+&signature=[\\w-]+$`));
    expect(Date.parse(expiresAt) - before).toBeGreaterThan(599_000);
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(600_000);

    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe(attachment('two\r\nlines.bin'));
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(sha256(await bytesOf(res))).toBe(sha256(data));

    const ranged = await fetch(url, { headers: { Range: 'bytes=1048576-1048585' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 1048576-1048585/${data.length}`);
    expect((await bytesOf(ranged)).equals(data.subarray(MiB, MiB + 10))).toBe(true);
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(data.length));
  });

  test('it names only its upload: another id, or another expiry, under its signature is 403 ERR_LINK_REFUSED', async () => {
    const user = uniqueUser('link');
    const mine = await completedUpload(freight.url, user, 'a.bin', randomData(100));
    const other = await completedUpload(freight.url, user, 'b.bin', randomData(100));
    const { url } = await link(freight.url, user, mine);
    const later = new URL(url);
    later.searchParams.set('expires', String(Number(later.searchParams.get('expires')) + 3600));
    for (const altered of [url.replace(mine, other), later.href, url.replace(/signature=.*/, 'signature=x')]) {
      const res = await fetch(altered);
      expect(res.status, altered).toBe(403);
      expect(await errorCodeOf(res)).toBe('ERR_LINK_REFUSED');
    }
    // The link's own upload still opens.
    expect((await fetch(url)).status).toBe(200);
  });

  test('an upload deleted after its link was made: the link answers 410 ERR_UPLOAD_GONE', async () => {
    const user = uniqueUser('link');
    const id = await completedUpload(freight.url, user, 'deleted.bin', randomData(100));
    const { url } = await link(freight.url, user, id);
    const deleted = await fetch(`${freight.url}/files/${id}`, {
      method: 'DELETE',
      headers: { ...TUS, ...(await bearer(user)) },
    });
    expect(deleted.status).toBe(204);
    const res = await fetch(url);
    expect(res.status).toBe(410);
    expect(await errorCodeOf(res)).toBe('ERR_UPLOAD_GONE');
  });

  test('it expires: once the clock passes PRESIGN_EXPIRES, 403 ERR_LINK_REFUSED saying so; a new link works', async () => {
    const user = uniqueUser('link');
    const data = randomData(100);
    const id = await completedUpload(freight.url, user, 'soon.bin', data);
    const { url } = await link(freight.url, user, id);
    clock.offsetMs = 10 * 60_000 - 2_000;
    expect((await fetch(url)).status).toBe(200);
    clock.offsetMs = 10 * 60_000 + 1_000;
    const expired = await fetch(url);
    expect(expired.status).toBe(403);
    expect(await errorCodeOf(expired)).toBe('ERR_LINK_REFUSED');
    expect(await fetch(url).then((res) => res.json())).toMatchObject({ message: expect.stringMatching(/expired at/) });
    const fresh = await link(freight.url, user, id);
    expect((await bytesOf(await fetch(fresh.url))).equals(data)).toBe(true);
  });
});
