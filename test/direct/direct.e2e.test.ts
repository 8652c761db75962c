/**
 * Direct-to-S3 uploads end to end: the project's client (and plain fetch) → presigned URLs → real S3 (Ceph RGW),
 * with Freight only planning, signing, recording (real PostgreSQL) and verifying.
 */
import { createHash } from 'node:crypto';
import { CompleteMultipartUploadCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test, vi, type MockInstance } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { uploadDirect } from '../../src/client/direct-upload.js';
import { bufferSource, fileSource } from '../../src/client/sources.js';
import { PartPresigner } from '../../src/direct/presigner.js';
import {
  freightOnS3,
  listMultipartUploads,
  MiB,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  startFreight,
  tokenFor,
  uniqueUser,
} from '../helpers/harness.js';

const ctx = freightOnS3('freight-direct', { MAX_UPLOAD_SIZE: '1GiB' });

// Every S3 request of this process goes through S3Client.send, Freight's included (it runs in the test's process):
// watching it tells how often Freight asked S3 to assemble an object.
let s3Sends: MockInstance<S3Client['send']>;
beforeAll(() => {
  s3Sends = vi.spyOn(S3Client.prototype, 'send');
});
afterAll(() => {
  s3Sends.mockRestore();
});
const completeRequestsFor = (key: string) =>
  s3Sends.mock.calls.filter(
    ([command]) => command instanceof CompleteMultipartUploadCommand && command.input.Key === key,
  ).length;

const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('base64');

async function api(user: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${ctx.freight.url}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${await tokenFor(user)}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** An upload created through the API, with nothing uploaded yet. */
async function createUpload(user: string, size: number, extra: Record<string, unknown> = {}) {
  const created = await api(user, 'POST', '/api/multipart', {
    filename: 'data.bin',
    size,
    partSize: 5 * MiB,
    ...extra,
  });
  expect(created.status).toBe(201);
  return created.body as {
    id: string;
    key: string;
    uploadId: string;
    partCount: number;
    parts: Array<{ partNumber: number; url: string; size: number; headers: Record<string, string> }>;
  };
}

async function putPart(user: string, id: string, partNumber: number, data: Uint8Array<ArrayBuffer>): Promise<string> {
  const signed = await api(user, 'POST', `/api/multipart/${id}/sign`, { parts: [{ partNumber, md5: md5(data) }] });
  expect(signed.status).toBe(200);
  const [part] = signed.body.parts;
  const res = await fetch(part.url, { method: 'PUT', body: data, headers: part.headers });
  expect(res.status).toBe(200);
  return res.headers.get('etag')!;
}

const uploadRow = async (id: string) => (await ctx.sql`select * from file_uploads where id = ${id}`)[0];

describe('direct uploads with the project client', () => {
  test('a 64 MiB file in parallel parts arrives byte-identical, every part recorded', async () => {
    const user = uniqueUser('dana');
    const data = randomData(64 * MiB + 999);
    let progress = 0;
    const result = await uploadDirect({
      endpoint: ctx.freight.url,
      token: await tokenFor(user),
      source: bufferSource(data),
      filename: 'film.mkv',
      mimeType: 'video/x-matroska',
      partSize: 5 * MiB,
      concurrency: 4,
      onProgress: (uploaded) => (progress = uploaded),
    });
    expect(result).toMatchObject({ size: data.length, uploadedParts: 13 });
    expect(progress).toBe(data.length);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, result.key)).toBe(sha256(data));
    expect(await uploadRow(result.id)).toMatchObject({
      protocol: 'direct',
      status: 'completed',
      user_id: user,
      filename: 'film.mkv',
      mime_type: 'video/x-matroska',
    });
    const parts =
      await ctx.sql`select part_number, size, etag, status from upload_parts where upload_id = ${result.id} order by part_number`;
    expect(parts).toHaveLength(13);
    expect(parts.every((p) => p.status === 'stored' && p.etag)).toBe(true);
    expect(Number(parts[12]!.size)).toBe(4 * MiB + 999);

    // The owner sees each part's MD5 as the client signed it, beside the ETag S3 returned (its hex MD5).
    const shown = await api(user, 'GET', `/api/uploads/${result.id}/parts`);
    expect(shown.status).toBe(200);
    expect(shown.body.parts).toHaveLength(13);
    for (const [i, part] of (
      shown.body.parts as Array<{ partNumber: number; md5: string; etag: string; size: number }>
    ).entries()) {
      const bytes = data.subarray(i * 5 * MiB, Math.min((i + 1) * 5 * MiB, data.length));
      expect(part).toMatchObject({ partNumber: i + 1, size: bytes.length, md5: md5(bytes), status: 'stored' });
      expect(Buffer.from(part.md5, 'base64').toString('hex')).toBe(part.etag.replace(/"/g, ''));
    }
    expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.key)).not.toContain(result.key);
  });

  test('the object is served as a download whatever type the client claimed; the claimed type stays in the API', async () => {
    const user = uniqueUser('mallory');
    const filename = "rapport d'été (final)*.html";
    const result = await uploadDirect({
      endpoint: ctx.freight.url,
      token: await tokenFor(user),
      source: bufferSource(Buffer.from('<script>alert(document.cookie)</script>') as Buffer<ArrayBuffer>),
      filename,
      mimeType: 'text/html',
    });
    const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket.bucket, Key: result.key }));
    expect(head.ContentType).toBe('application/octet-stream');
    // RFC 6266 / RFC 8187: every byte outside attr-char percent-encoded, ' ( ) * included.
    expect(head.ContentDisposition).toBe(
      `attachment; filename="rapport d'_t_ (final)*.html"; filename*=UTF-8''rapport%20d%27%C3%A9t%C3%A9%20%28final%29%2A.html`,
    );
    expect(await uploadRow(result.id)).toMatchObject({ mime_type: 'text/html', filename });
    const shown = await api(user, 'GET', `/api/uploads/${result.id}`);
    expect(shown.body).toMatchObject({ mimeType: 'text/html', filename });
  });

  test('one part that fails is retried alone, after a backoff', async () => {
    const data = randomData(16 * MiB);
    const puts = new Map<number, number>();
    const signed: number[][] = [];
    const sleeps: number[] = [];
    let failed = false;
    const flakyFetch: typeof fetch = async (input, init) => {
      const url = new URL(String(input));
      if (url.pathname.endsWith('/sign')) {
        signed.push(JSON.parse(String(init?.body)).parts.map((part: { partNumber: number }) => part.partNumber));
      }
      if (init?.method === 'PUT') {
        const partNumber = Number(url.searchParams.get('partNumber'));
        puts.set(partNumber, (puts.get(partNumber) ?? 0) + 1);
        if (partNumber === 3 && !failed) {
          failed = true;
          throw new TypeError('fetch failed (connection reset)');
        }
      }
      return fetch(input, init);
    };
    const result = await uploadDirect({
      endpoint: ctx.freight.url,
      token: await tokenFor(uniqueUser('eve')),
      source: bufferSource(data),
      filename: 'flaky.bin',
      partSize: 5 * MiB,
      fetch: flakyFetch,
      // Full jitter drawn at the middle: the first retry waits half of baseMs.
      retry: { baseMs: 10, capMs: 50, random: () => 0.5, sleep: async (ms) => void sleeps.push(ms) },
    });
    expect(Object.fromEntries(puts)).toEqual({ 1: 1, 2: 1, 3: 2, 4: 1 });
    expect(sleeps).toEqual([5]);
    // one batch for all four parts, then a fresh URL for the retry of part 3
    expect(signed).toEqual([[1, 2, 3, 4], [3]]);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, result.key)).toBe(sha256(data));
  });

  test('an interrupted upload resumes from the parts S3 holds, sending only the rest', async () => {
    const user = uniqueUser('fred');
    const data = randomData(21 * MiB);
    const controller = new AbortController();
    let id = '';
    let done = 0;
    await expect(
      uploadDirect({
        endpoint: ctx.freight.url,
        token: await tokenFor(user),
        source: bufferSource(data),
        filename: 'resume.bin',
        partSize: 5 * MiB,
        concurrency: 1,
        signal: controller.signal,
        onCreated: (created) => (id = created),
        onProgress: () => ++done === 2 && controller.abort(),
      }),
    ).rejects.toThrow();

    const state = await api(user, 'GET', `/api/multipart/${id}/parts`);
    expect(state.status).toBe(200);
    expect(state.body.parts.map((p: { partNumber: number }) => p.partNumber)).toEqual([1, 2]);
    expect(await uploadRow(id)).toMatchObject({ status: 'uploading' });
    expect(Number((await uploadRow(id))?.bytes_received)).toBe(10 * MiB);

    const result = await uploadDirect({
      endpoint: ctx.freight.url,
      token: await tokenFor(user),
      source: bufferSource(data),
      filename: 'resume.bin',
      resume: { id },
    });
    expect(result.uploadedParts).toBe(3);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, result.key)).toBe(sha256(data));
  });
});

describe('a file streamed from disk', () => {
  test('its parts are hashed and sent as streams, never read whole into memory, and resume checks stream too', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'freight-direct-file-'));
    try {
      const file = path.join(dir, 'disk.bin');
      const data = randomData(17 * MiB + 3);
      await writeFile(file, data);
      const user = uniqueUser('hana');
      const token = await tokenFor(user);
      // A file source that refuses whole-part reads: every byte must come through stream().
      const streamingOnly = async () => {
        const source = await fileSource(file);
        return { ...source, read: () => Promise.reject(new Error('a whole part was read into memory')) };
      };
      const controller = new AbortController();
      let id = '';
      let parts = 0;
      await expect(
        uploadDirect({
          endpoint: ctx.freight.url,
          token,
          source: await streamingOnly(),
          filename: 'disk.bin',
          partSize: 5 * MiB,
          concurrency: 1,
          signal: controller.signal,
          onCreated: (created) => (id = created),
          onProgress: () => ++parts === 2 && controller.abort(),
        }),
      ).rejects.toThrow();
      const result = await uploadDirect({
        endpoint: ctx.freight.url,
        token,
        source: await streamingOnly(),
        filename: 'disk.bin',
        resume: { id },
      });
      expect(result.uploadedParts).toBe(2);
      expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, result.key)).toBe(sha256(data));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('what S3 itself refuses, through the signed URLs', () => {
  test('bytes that do not match the MD5 the URL was signed with are rejected (BadDigest)', async () => {
    const user = uniqueUser('gil');
    const { id } = await createUpload(user, 6 * MiB);
    const good = randomData(5 * MiB);
    const signed = await api(user, 'POST', `/api/multipart/${id}/sign`, { parts: [{ partNumber: 1, md5: md5(good) }] });
    const [part] = signed.body.parts;
    expect(part.headers).toEqual({ 'Content-MD5': md5(good) });
    const corrupted = Buffer.from(good);
    corrupted[1000] = corrupted[1000]! ^ 0xff;
    const res = await fetch(part.url, { method: 'PUT', body: corrupted, headers: part.headers });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/BadDigest/);
  });

  test('a body longer than the signed Content-Length is rejected', async () => {
    const user = uniqueUser('hank');
    const { parts } = await createUpload(user, 6 * MiB);
    expect(parts.map((p) => p.size)).toEqual([5 * MiB, 1 * MiB]);
    const res = await fetch(parts[1]!.url, { method: 'PUT', body: randomData(1 * MiB + 1) });
    expect(res.status).toBe(403);
    const ok = await fetch(parts[1]!.url, { method: 'PUT', body: randomData(1 * MiB) });
    expect(ok.status).toBe(200);
  });

  test('an expired URL is rejected', async () => {
    const user = uniqueUser('ivy');
    const { key, uploadId } = await createUpload(user, 6 * MiB);
    // Freight's presigner, signing as of 20 s ago with a 1 s lifetime.
    const presigner = new PartPresigner(ctx.s3, ctx.bucket.bucket, 1);
    const [part] = await presigner.sign(key, uploadId, [{ partNumber: 2, size: MiB }], new Date(Date.now() - 20_000));
    const res = await fetch(part!.url, { method: 'PUT', body: randomData(MiB) });
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(/AccessDenied|expired/i);
  });
});

describe('completion', () => {
  test('a missing part is a 409 naming it, and the upload stays resumable', async () => {
    const user = uniqueUser('jo');
    const data = randomData(12 * MiB);
    const { id } = await createUpload(user, data.length);
    const etag1 = await putPart(user, id, 1, data.subarray(0, 5 * MiB));
    const etag3 = await putPart(user, id, 3, data.subarray(10 * MiB));

    const early = await api(user, 'POST', `/api/multipart/${id}/complete`, {
      parts: [
        { partNumber: 1, etag: etag1 },
        { partNumber: 3, etag: etag3 },
      ],
    });
    expect(early.status).toBe(409);
    expect(early.body.message).toMatch(/missing parts 2/);
    expect(early.body.details.problems).toEqual([{ partNumber: 2, problem: 'missing' }]);
    expect(await uploadRow(id)).toMatchObject({ status: 'uploading', locked_until: null });

    const etag2 = await putPart(user, id, 2, data.subarray(5 * MiB, 10 * MiB));
    const done = await api(user, 'POST', `/api/multipart/${id}/complete`, {
      parts: [
        { partNumber: 1, etag: etag1 },
        { partNumber: 2, etag: etag2 },
        { partNumber: 3, etag: etag3 },
      ],
    });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ id, size: data.length, key: id, location: expect.stringContaining(id) });
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(data));

    expect(completeRequestsFor(id)).toBe(1);

    // a second complete is idempotent: same answer, S3 not called again
    const again = await api(user, 'POST', `/api/multipart/${id}/complete`, { parts: [{ partNumber: 1, etag: etag1 }] });
    expect(again).toEqual(done);
    expect(completeRequestsFor(id)).toBe(1);
  });

  test('a wrong ETag is a 409 naming the part', async () => {
    const user = uniqueUser('kim');
    const data = randomData(6 * MiB);
    const { id } = await createUpload(user, data.length);
    const etag1 = await putPart(user, id, 1, data.subarray(0, 5 * MiB));
    await putPart(user, id, 2, data.subarray(5 * MiB));
    const res = await api(user, 'POST', `/api/multipart/${id}/complete`, {
      parts: [
        { partNumber: 1, etag: etag1 },
        { partNumber: 2, etag: '"0123456789abcdef0123456789abcdef"' },
      ],
    });
    expect(res.status).toBe(409);
    expect(res.body.message).toMatch(/part 2: ETag/);
    expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.key)).toContain(id);
  });

  test('concurrent completes of one upload: one asks S3 to assemble it, none fails it', async () => {
    const user = uniqueUser('lou');
    const data = randomData(6 * MiB);
    const { id } = await createUpload(user, data.length);
    const parts = [
      { partNumber: 1, etag: await putPart(user, id, 1, data.subarray(0, 5 * MiB)) },
      { partNumber: 2, etag: await putPart(user, id, 2, data.subarray(5 * MiB)) },
    ];
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => api(user, 'POST', `/api/multipart/${id}/complete`, { parts })),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 200 || s === 409)).toBe(true);
    for (const answer of answers.filter((a) => a.status === 409))
      expect(answer.body.message).toMatch(/another request is completing/);
    // Every 200 is the same answer, from the one completion S3 was asked for.
    expect(completeRequestsFor(id)).toBe(1);
    for (const answer of answers.filter((a) => a.status === 200))
      expect(answer.body).toEqual({
        id,
        key: id,
        location: expect.any(String),
        size: data.length,
        status: 'completed',
      });
    expect(await uploadRow(id)).toMatchObject({ status: 'completed' });
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(data));
  });
});

describe('abort, ownership and validation', () => {
  test('abort leaves no multipart upload behind; a completed upload cannot be aborted', async () => {
    const user = uniqueUser('max');
    const { id } = await createUpload(user, 6 * MiB);
    await putPart(user, id, 1, randomData(5 * MiB));
    expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.key)).toContain(id);
    expect((await api(user, 'DELETE', `/api/multipart/${id}`)).status).toBe(204);
    expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.key)).not.toContain(id);
    expect(await uploadRow(id)).toMatchObject({ status: 'aborted' });
    expect((await api(user, 'DELETE', `/api/multipart/${id}`)).status).toBe(204);
    expect((await api(user, 'POST', `/api/multipart/${id}/sign`, { parts: [{ partNumber: 1 }] })).status).toBe(410);

    const done = await uploadDirect({
      endpoint: ctx.freight.url,
      token: await tokenFor(user),
      source: bufferSource(randomData(100)),
      filename: 'small.txt',
    });
    const refused = await api(user, 'DELETE', `/api/multipart/${done.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.message).toMatch(/completed and cannot be aborted/);
  });

  test("another user's upload is a 404 everywhere", async () => {
    const { id } = await createUpload(uniqueUser('owner'), 6 * MiB);
    const stranger = uniqueUser('stranger');
    for (const [method, path, body] of [
      ['POST', `/api/multipart/${id}/sign`, { parts: [{ partNumber: 1 }] }],
      ['GET', `/api/multipart/${id}/parts`, undefined],
      ['POST', `/api/multipart/${id}/complete`, { parts: [{ partNumber: 1, etag: 'x' }] }],
      ['DELETE', `/api/multipart/${id}`, undefined],
      ['GET', `/api/uploads/${id}`, undefined],
    ] as const) {
      const res = await api(stranger, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
    }
  });

  test('the direct routes, native and Companion, do not act on a tus upload: 404 as if there were none', async () => {
    const user = uniqueUser('tusser');
    const auth = { Authorization: `Bearer ${await tokenFor(user)}`, 'Tus-Resumable': '1.0.0' };
    const created = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...auth, 'Upload-Length': String(10 * MiB) },
    });
    expect(created.status).toBe(201);
    const id = new URL(created.headers.get('location')!).pathname.split('/').pop()!;
    // One whole part (8 MiB, S3_PART_SIZE) gives the tus upload its S3 multipart upload.
    const patched = await fetch(`${ctx.freight.url}/files/${id}`, {
      method: 'PATCH',
      headers: { ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: randomData(8 * MiB),
    });
    expect(patched.status).toBe(204);
    const s3UploadId: string = (await uploadRow(id))!.s3_upload_id;
    expect(s3UploadId).toEqual(expect.any(String));

    const companionQuery = `?key=${encodeURIComponent(id)}`;
    const companionPath = `/s3/multipart/${encodeURIComponent(s3UploadId)}`;
    for (const [method, path, body] of [
      ['POST', `/api/multipart/${id}/sign`, { parts: [{ partNumber: 1 }] }],
      ['GET', `/api/multipart/${id}/parts`, undefined],
      ['POST', `/api/multipart/${id}/complete`, { parts: [{ partNumber: 1, etag: 'x' }] }],
      ['DELETE', `/api/multipart/${id}`, undefined],
      ['GET', `${companionPath}/1${companionQuery}`, undefined],
      ['GET', `${companionPath}/batch${companionQuery}&partNumbers=1,2`, undefined],
      ['GET', `${companionPath}${companionQuery}`, undefined],
      ['POST', `${companionPath}/complete${companionQuery}`, { parts: [{ PartNumber: 1, ETag: 'x' }] }],
      ['DELETE', `${companionPath}${companionQuery}`, undefined],
    ] as const) {
      const res = await api(user, method, path, body);
      expect(res, `${method} ${path}`).toEqual({
        status: 404,
        body: { error: 'ERR_UPLOAD_NOT_FOUND', message: 'upload not found' },
      });
    }

    // The tus upload is untouched and finishes as tus.
    expect(await uploadRow(id)).toMatchObject({
      protocol: 'tus',
      status: 'uploading',
      stored_offset: String(8 * MiB),
      locked_until: null,
    });
    expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.uploadId)).toContain(s3UploadId);
    const rest = await fetch(`${ctx.freight.url}/files/${id}`, {
      method: 'PATCH',
      headers: { ...auth, 'Upload-Offset': String(8 * MiB), 'Content-Type': 'application/offset+octet-stream' },
      body: randomData(2 * MiB),
    });
    expect(rest.status).toBe(204);
    expect(await uploadRow(id)).toMatchObject({ status: 'completed' });
  });

  test.each([
    [{ filename: 'a.bin', size: 0 }, 400, /size/],
    [{ filename: 'a.bin', size: 2 * 1024 * MiB }, 413, /exceeds this server's maximum/],
    [{ filename: 'a.bin', size: 100, partSize: MiB }, 400, /partSize/],
    [
      { filename: 'a.bin', size: 1024 * MiB, partSize: 5 * MiB, parts: [{ partNumber: 206 }] },
      400,
      /outside this upload.s parts 1..205/,
    ],
    [{ filename: '../etc/passwd', size: 10 }, 400, /filename/],
    [{ filename: 'a\u0000b', size: 10 }, 400, /filename/],
    [{ filename: 'a.bin', size: 10, mimeType: 'not a type' }, 400, /mimeType/],
    [{ filename: 'a.bin', size: 10, surprise: true }, 400, /additional/],
    [{ size: 10 }, 400, /filename/],
  ])('create with %o is %i', async (body, status, message) => {
    const res = await api(uniqueUser('v'), 'POST', '/api/multipart', body);
    expect(res.status).toBe(status);
    expect(res.body.message).toMatch(message);
  });

  test('the planner keeps S3_PART_SIZE while it fits, and signs the first 20 parts', async () => {
    const planned = await api(uniqueUser('v'), 'POST', '/api/multipart', { filename: 'a', size: 1024 * MiB });
    expect(planned.body).toMatchObject({ partSize: 8 * MiB, partCount: 128 });
    expect(planned.body.parts).toHaveLength(20);
  });

  /** Creates on a Freight of its own (this file's allows 1 GiB, which no part size can cut into too many parts). */
  async function createOn(overrides: Record<string, string>, bodies: object[]) {
    const freight = await startFreight(serviceEnv(ctx.bucket.bucket, overrides));
    try {
      const answers = [];
      for (const body of bodies) {
        const res = await fetch(`${freight.url}/api/multipart`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${await tokenFor(uniqueUser('v'))}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ filename: 'a', parts: [], ...body }),
        });
        answers.push({ status: res.status, body: (await res.json()) as any });
      }
      return answers;
    } finally {
      await freight.close();
    }
  }

  test("a part size that would need more than S3's 10,000 parts is refused; the planner stays within them", async () => {
    const [tooMany, fits, planned] = await createOn({ MAX_UPLOAD_SIZE: '5TiB' }, [
      { size: 10_000 * 5 * MiB + 1, partSize: 5 * MiB },
      { size: 10_000 * 5 * MiB, partSize: 5 * MiB },
      { size: 1024 * 1024 * MiB },
    ]);
    expect(tooMany).toEqual({
      status: 400,
      body: {
        error: 'ERR_BAD_REQUEST',
        message: `partSize ${5 * MiB} would need 10001 parts; this server allows at most 10000`,
      },
    });
    expect(fits).toMatchObject({ status: 201, body: { partSize: 5 * MiB, partCount: 10_000 } });
    expect(planned).toMatchObject({
      status: 201,
      body: { partSize: Math.ceil((1024 * 1024 * MiB) / 10_000), partCount: 10_000 },
    });
  });

  test('S3_MAX_PARTS lowers that limit, for the client and the planner alike', async () => {
    const [tooMany, planned] = await createOn({ MAX_UPLOAD_SIZE: '1GiB', S3_MAX_PARTS: '100' }, [
      { size: 100 * 5 * MiB + 1, partSize: 5 * MiB },
      { size: 1024 * MiB },
    ]);
    expect(tooMany).toEqual({
      status: 400,
      body: {
        error: 'ERR_BAD_REQUEST',
        message: `partSize ${5 * MiB} would need 101 parts; this server allows at most 100`,
      },
    });
    expect(planned).toMatchObject({ status: 201, body: { partSize: Math.ceil((1024 * MiB) / 100), partCount: 100 } });
  });

  test('sign requests are checked: at most 1000 parts, known part numbers, real MD5s', async () => {
    const user = uniqueUser('w');
    const { id } = await createUpload(user, 6 * MiB);
    const tooMany = await api(user, 'POST', `/api/multipart/${id}/sign`, {
      parts: Array.from({ length: 1001 }, (_, i) => ({ partNumber: i + 1 })),
    });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.message).toMatch(/1000/);
    const beyond = await api(user, 'POST', `/api/multipart/${id}/sign`, { parts: [{ partNumber: 3 }] });
    expect(beyond.status).toBe(400);
    expect(beyond.body.message).toMatch(/outside this upload's parts 1..2/);
    const twice = await api(user, 'POST', `/api/multipart/${id}/sign`, {
      parts: [{ partNumber: 1 }, { partNumber: 1 }],
    });
    expect(twice.status).toBe(400);
    expect(twice.body.message).toMatch(/listed twice/);
    const badMd5 = await api(user, 'POST', `/api/multipart/${id}/sign`, { parts: [{ partNumber: 1, md5: 'abc' }] });
    expect(badMd5.status).toBe(400);
    expect(badMd5.body.message).toMatch(/md5/);
  });
});
