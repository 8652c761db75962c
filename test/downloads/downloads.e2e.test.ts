/**
 * Downloads of a completed upload, GET /files/:id (tus uploads) and GET|HEAD /api/uploads/:id/download (either
 * protocol): on S3 a redirect to a presigned GET that S3 answers with the exact bytes, ranges and the file's name;
 * on the local file store the file streamed with ranges. Any file name, as data, to its owner only.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, inject, test } from 'vitest';
import { uploadDirect } from '../../src/client/direct-upload.js';
import { bufferSource } from '../../src/client/sources.js';
import { attachment } from '../../src/http/content-disposition.js';
import {
  JWT_SECRET,
  MiB,
  errorCodeOf,
  freightOnS3,
  randomData,
  serviceEnv,
  sha256,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../helpers/harness.js';
import { testDatabaseUrl } from '../helpers/file-database.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const NAMES = ['plain report.txt', 'отчёт 2026.pdf', '報告書.txt', 'two\r\nlines.txt'];

const bearer = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });

/** A tus upload of `data` named `name`, completed unless told otherwise; its URL. */
async function tusUpload(
  base: string,
  user: string,
  name: string,
  data: Buffer<ArrayBuffer>,
  complete = true,
): Promise<string> {
  const auth = await bearer(user);
  const created = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: {
      ...TUS,
      ...auth,
      'Upload-Length': String(data.length),
      // The client claims HTML: the download is data all the same.
      'Upload-Metadata': `filename ${Buffer.from(name).toString('base64')},filetype ${Buffer.from('text/html').toString('base64')}`,
    },
  });
  expect(created.status).toBe(201);
  const url = created.headers.get('location')!;
  if (complete) {
    const patched = await fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: data,
    });
    expect(patched.status).toBe(204);
  }
  return url;
}

const idOf = (url: string) => url.split('/').pop()!;
const bytesOf = async (res: Response) => Buffer.from(await res.arrayBuffer());

describe('on S3: a redirect to a presigned GET', () => {
  // Each test signs at one instant: the URL a redirect names is the one following it reaches (signed a second
  // apart, their X-Amz-Date and signature would differ).
  let signedAt = new Date();
  beforeEach(() => {
    signedAt = new Date();
  });
  const ctx = freightOnS3('freight-downloads', { PRESIGN_EXPIRES: '5m' }, { now: () => signedAt });

  test.each(NAMES)(
    '%j: 302 to a short-lived URL; S3 answers the exact bytes, ranges, and the name as an attachment',
    async (name) => {
      const user = uniqueUser('dl');
      const data = randomData(6 * MiB + 5);
      const url = await tusUpload(ctx.freight.url, user, name, data);
      const auth = await bearer(user);

      for (const download of [url, `${ctx.freight.url}/api/uploads/${idOf(url)}/download`]) {
        const redirect = await fetch(download, { headers: auth, redirect: 'manual' });
        expect(redirect.status).toBe(302);
        expect(redirect.headers.get('cache-control')).toBe('private, no-store');
        const location = new URL(redirect.headers.get('location')!);
        expect(location.origin).toBe(inject('s3').endpoint);
        expect(location.searchParams.get('X-Amz-Expires')).toBe('300');
        expect(location.searchParams.get('response-content-disposition')).toBe(attachment(name));
        expect(location.searchParams.get('response-content-type')).toBe('application/octet-stream');

        // What a client gets by following it: S3's answer, with no Authorization (fetch drops it across origins).
        const res = await fetch(download, { headers: auth });
        expect(res.status).toBe(200);
        expect(res.url).toBe(location.href);
        expect(res.headers.get('content-type')).toBe('application/octet-stream');
        expect(res.headers.get('content-disposition')).toBe(attachment(name));
        expect(sha256(await bytesOf(res))).toBe(sha256(data));

        const ranged = await fetch(download, { headers: { ...auth, Range: 'bytes=5242870-5242889' } });
        expect(ranged.status).toBe(206);
        expect(ranged.headers.get('content-range')).toBe(`bytes 5242870-5242889/${data.length}`);
        expect((await bytesOf(ranged)).equals(data.subarray(5242870, 5242890))).toBe(true);
      }
    },
  );

  test('a direct upload downloads through the API route (not through the tus route), as data under its name', async () => {
    const user = uniqueUser('dl');
    const data = randomData(5 * MiB + 1);
    const result = await uploadDirect({
      endpoint: ctx.freight.url,
      token: await tokenFor(user),
      source: bufferSource(data),
      filename: 'отчёт 報告.html',
      mimeType: 'text/html',
    });
    const auth = await bearer(user);
    const res = await fetch(`${ctx.freight.url}/api/uploads/${result.id}/download`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-disposition')).toBe(attachment('отчёт 報告.html'));
    expect(sha256(await bytesOf(res))).toBe(sha256(data));
    const ranged = await fetch(`${ctx.freight.url}/api/uploads/${result.id}/download`, {
      headers: { ...auth, Range: 'bytes=-1' },
    });
    expect(ranged.status).toBe(206);
    expect((await bytesOf(ranged)).equals(data.subarray(-1))).toBe(true);
    expect((await fetch(`${ctx.freight.url}/files/${result.id}`, { headers: auth, redirect: 'manual' })).status).toBe(
      404,
    );
  });

  test('HEAD tells the size, the name and that ranges work, from the database; nothing for anyone else or before completion', async () => {
    const user = uniqueUser('dl');
    const data = randomData(1000);
    const url = await tusUpload(ctx.freight.url, user, 'head.bin', data);
    const auth = await bearer(user);
    const download = `${ctx.freight.url}/api/uploads/${idOf(url)}/download`;
    const head = await fetch(download, { method: 'HEAD', headers: auth });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('1000');
    expect(head.headers.get('accept-ranges')).toBe('bytes');
    expect(head.headers.get('content-disposition')).toBe(attachment('head.bin'));

    const other = await bearer(uniqueUser('other'));
    expect((await fetch(download, { headers: other, redirect: 'manual' })).status).toBe(404);
    expect((await fetch(url, { headers: other, redirect: 'manual' })).status).toBe(404);
    const unfinished = await tusUpload(ctx.freight.url, user, 'later.bin', data, false);
    const early = await fetch(`${ctx.freight.url}/api/uploads/${idOf(unfinished)}/download`, {
      headers: auth,
      redirect: 'manual',
    });
    expect(early.status).toBe(409);
    expect(await errorCodeOf(early)).toBe('ERR_UPLOAD_CONFLICT');
    const earlyTus = await fetch(unfinished, { headers: auth, redirect: 'manual' });
    expect(earlyTus.status).toBe(409);
    expect(await errorCodeOf(earlyTus)).toBe('ERR_UPLOAD_CONFLICT');
  });
});

describe('S3_PUBLIC_ENDPOINT: URLs signed for the address clients reach', () => {
  const ctx = freightOnS3('freight-public-endpoint');
  let publicFreight: RunningFreight;
  // The same S3 server under another name, as docker-compose's http://localhost:9000 is http://minio:9000.
  const publicEndpoint = () => inject('s3').endpoint.replace('127.0.0.1', 'localhost');

  beforeAll(async () => {
    publicFreight = await startFreight(serviceEnv(ctx.bucket.bucket, { S3_PUBLIC_ENDPOINT: publicEndpoint() }));
  });
  afterAll(() => publicFreight?.close());

  test('download redirects and part URLs point at S3_PUBLIC_ENDPOINT, and work there', async () => {
    const user = uniqueUser('dl');
    const data = randomData(5 * MiB + 3);
    const result = await uploadDirect({
      endpoint: publicFreight.url,
      token: await tokenFor(user),
      source: bufferSource(data),
      filename: 'public.bin',
      onCreated: () => {},
    });
    expect(new URL(result.location).origin).toBe(publicEndpoint());
    const created = await fetch(`${publicFreight.url}/api/multipart`, {
      method: 'POST',
      headers: { ...(await bearer(user)), 'Content-Type': 'application/json' },
      body: JSON.stringify({ filename: 'x.bin', size: 10, parts: [{ partNumber: 1 }] }),
    });
    const body = (await created.json()) as { parts: Array<{ url: string }> };
    expect(new URL(body.parts[0]!.url).origin).toBe(publicEndpoint());

    const auth = await bearer(user);
    const redirect = await fetch(`${publicFreight.url}/api/uploads/${result.id}/download`, {
      headers: auth,
      redirect: 'manual',
    });
    expect(new URL(redirect.headers.get('location')!).origin).toBe(publicEndpoint());
    const res = await fetch(`${publicFreight.url}/api/uploads/${result.id}/download`, { headers: auth });
    expect(res.status).toBe(200);
    expect(sha256(await bytesOf(res))).toBe(sha256(data));
  });
});

describe('on the local file store: the file streamed, with ranges', () => {
  let freight: RunningFreight;
  beforeAll(async () => {
    freight = await startFreight({
      DATABASE_URL: testDatabaseUrl(),
      AUTH_JWT_SECRET: JWT_SECRET,
      LOG_LEVEL: 'silent',
    });
  });
  afterAll(() => freight?.close());

  test.each(NAMES)('%j: the exact bytes as an attachment of that name, on both routes', async (name) => {
    const user = uniqueUser('dl');
    const data = randomData(3 * MiB + 7);
    const url = await tusUpload(freight.url, user, name, data);
    const auth = await bearer(user);
    for (const download of [url, `${freight.url}/api/uploads/${idOf(url)}/download`]) {
      const res = await fetch(download, { headers: auth, redirect: 'manual' });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/octet-stream');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-disposition')).toBe(attachment(name));
      expect(res.headers.get('accept-ranges')).toBe('bytes');
      expect(res.headers.get('content-length')).toBe(String(data.length));
      expect(sha256(await bytesOf(res))).toBe(sha256(data));
    }
  });

  test('one range is 206 with its Content-Range; past the end 416 with the size; several or garbage the whole file; HEAD too', async () => {
    const user = uniqueUser('dl');
    const data = randomData(1000);
    const url = await tusUpload(freight.url, user, 'ranges.bin', data);
    const auth = await bearer(user);
    const download = `${freight.url}/api/uploads/${idOf(url)}/download`;
    const get = (range: string, extra: Record<string, string> = {}) =>
      fetch(download, { headers: { ...auth, Range: range, ...extra } });

    for (const [range, start, end] of [
      ['bytes=0-0', 0, 0],
      ['bytes=10-19', 10, 19],
      ['bytes=990-', 990, 999],
      ['bytes=-5', 995, 999],
      ['bytes=500-5000', 500, 999],
    ] as const) {
      const res = await get(range);
      expect(res.status, range).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/1000`);
      expect(res.headers.get('content-length')).toBe(String(end - start + 1));
      expect((await bytesOf(res)).equals(data.subarray(start, end + 1))).toBe(true);
    }
    const tusRange = await fetch(url, { headers: { ...auth, Range: 'bytes=1-2' } });
    expect(tusRange.status).toBe(206);
    expect((await bytesOf(tusRange)).equals(data.subarray(1, 3))).toBe(true);

    const past = await get('bytes=1000-');
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe('bytes */1000');
    expect(await errorCodeOf(past)).toBe('ERR_RANGE_NOT_SATISFIABLE');

    for (const whole of ['bytes=0-1,5-6', 'bytes=x', 'lines=1-2']) {
      const res = await get(whole);
      expect(res.status, whole).toBe(200);
      expect((await bytesOf(res)).equals(data)).toBe(true);
    }
    // If-Range with another validator: the file changed since the client's copy, so all of it.
    const stale = await get('bytes=0-1', { 'If-Range': '"something-else"' });
    expect(stale.status).toBe(200);
    const fresh = await get('bytes=0-1', { 'If-Range': (await get('bytes=0-0')).headers.get('etag')! });
    expect(fresh.status).toBe(206);

    const head = await fetch(download, { method: 'HEAD', headers: { ...auth, Range: 'bytes=10-19' } });
    expect(head.status).toBe(206);
    expect(head.headers.get('content-range')).toBe('bytes 10-19/1000');
    expect(head.headers.get('content-length')).toBe('10');
    const headPast = await fetch(download, { method: 'HEAD', headers: { ...auth, Range: 'bytes=2000-' } });
    expect(headPast.status).toBe(416);
  });

  test('an empty file: 200 with no bytes; any range 416', async () => {
    const user = uniqueUser('dl');
    const url = await tusUpload(freight.url, user, 'empty.txt', randomData(0), false);
    const auth = await bearer(user);
    const res = await fetch(url, { headers: auth });
    expect(res.status).toBe(200);
    expect((await bytesOf(res)).length).toBe(0);
    const ranged = await fetch(url, { headers: { ...auth, Range: 'bytes=0-' } });
    expect(ranged.status).toBe(416);
    expect(ranged.headers.get('content-range')).toBe('bytes */0');
  });
});
