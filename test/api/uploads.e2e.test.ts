/** GET /api/uploads and /api/uploads/:id: an owner's view of their uploads. */
import { describe, expect, test } from 'vitest';
import { freightOnS3, MiB, randomData, tokenFor, uniqueUser } from '../helpers/harness.js';
import { startTusUpload, uploadIdOf } from '../helpers/tus-client.js';

const ctx = freightOnS3('freight-api', { S3_PART_SIZE: '5MiB' });

async function get(user: string, path: string) {
  const res = await fetch(`${ctx.freight.url}${path}`, {
    headers: { Authorization: `Bearer ${await tokenFor(user)}` },
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function createTus(user: string, length: number, filename: string): Promise<string> {
  const res = await fetch(`${ctx.freight.url}/files/`, {
    method: 'POST',
    headers: {
      'Tus-Resumable': '1.0.0',
      Authorization: `Bearer ${await tokenFor(user)}`,
      'Upload-Length': String(length),
      'Upload-Metadata': `filename ${Buffer.from(filename).toString('base64')}`,
    },
  });
  expect(res.status).toBe(201);
  return uploadIdOf(res.headers.get('location')!);
}

describe('the uploads API', () => {
  test('lists my uploads newest first, page by page, and filters by status', async () => {
    const user = uniqueUser('lister');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await createTus(user, 100, `file-${i}.txt`));
    await createTus(uniqueUser('other'), 100, 'not-mine.txt');

    const first = await get(user, '/api/uploads?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.uploads.map((u: { id: string }) => u.id)).toEqual([ids[4], ids[3]]);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await get(user, `/api/uploads?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.uploads.map((u: { id: string }) => u.id)).toEqual([ids[2], ids[1]]);
    const third = await get(user, `/api/uploads?limit=2&cursor=${second.body.nextCursor}`);
    expect(third.body.uploads.map((u: { id: string }) => u.id)).toEqual([ids[0]]);
    expect(third.body.nextCursor).toBeNull();

    expect(first.body.uploads[0]).toMatchObject({
      filename: 'file-4.txt',
      protocol: 'tus',
      status: 'pending',
      totalSize: 100,
      bytesReceived: 0,
      createdAt: expect.any(String),
      expiresAt: expect.any(String),
    });
    const pending = await get(user, '/api/uploads?status=pending&limit=100');
    expect(pending.body.uploads).toHaveLength(5);
    const completed = await get(user, '/api/uploads?status=completed');
    expect(completed.body.uploads).toEqual([]);
  });

  test('one upload shows its status, sizes, parts count and timestamps', async () => {
    const user = uniqueUser('viewer');
    const data = randomData(11 * MiB);
    const run = startTusUpload(data, {
      endpoint: `${ctx.freight.url}/files/`,
      headers: { Authorization: `Bearer ${await tokenFor(user)}` },
      metadata: { filename: 'eleven.bin', filetype: 'application/x-test' },
    });
    const id = uploadIdOf(await run.done);
    const { status, body } = await get(user, `/api/uploads/${id}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      id,
      filename: 'eleven.bin',
      mimeType: 'application/x-test',
      status: 'completed',
      totalSize: data.length,
      bytesReceived: data.length,
      partSize: 5 * MiB,
      partsCount: 3,
      storageKey: id,
      error: null,
    });
    expect(Date.parse(body.completedAt)).toBeGreaterThanOrEqual(Date.parse(body.createdAt));
  });

  test("another user's upload, an unknown id and a malformed one are all 404", async () => {
    const id = await createTus(uniqueUser('owner'), 10, 'x');
    for (const path of [
      `/api/uploads/${id}`,
      '/api/uploads/6f1d2c1e-0000-4000-8000-000000000000',
      '/api/uploads/zzz',
    ]) {
      const { status, body } = await get(uniqueUser('stranger'), path);
      expect(status, path).toBe(404);
      expect(body).toEqual({ error: 'ERR_UPLOAD_NOT_FOUND', message: 'upload not found' });
    }
  });

  test('bad query parameters are 400 with the reason', async () => {
    const user = uniqueUser('q');
    for (const [query, reason] of [
      ['status=vanished', /status/],
      ['limit=0', /limit/],
      ['limit=1000', /limit/],
      ['cursor=bm9wZQ', /cursor/],
    ] as const) {
      const { status, body } = await get(user, `/api/uploads?${query}`);
      expect(status, query).toBe(400);
      expect(body.message).toMatch(reason);
    }
  });

  test('a cursor that is not a timestamp and an upload id is 400 naming the cursor, never a 500', async () => {
    const user = uniqueUser('cursor');
    const cursor = (text: string) => Buffer.from(text).toString('base64url');
    const id = '6f1d2c1e-0000-4000-8000-000000000000';
    for (const malformed of [
      cursor('2024-01-01T00:00:00Z|x'),
      cursor('2024-01-01T00:00:00Z|6f1d2c1e-0000-4000-8000'),
      cursor(`not a date|${id}`),
      cursor(`12|${id}`),
      cursor(`2024-13-45T00:00:00Z|${id}`),
      cursor(`2024-01-01T00:00:00Z|${id}|extra`),
      cursor('2024-01-01T00:00:00Z'),
      cursor(`|${id}`),
      cursor('|'),
      '%21%21%21',
      'bm9wZQ',
    ]) {
      const { status, body } = await get(user, `/api/uploads?cursor=${malformed}`);
      expect(status, Buffer.from(decodeURIComponent(malformed), 'base64url').toString()).toBe(400);
      expect(body).toMatchObject({ error: 'ERR_BAD_REQUEST', message: expect.stringMatching(/cursor/) });
    }
    // A well-formed cursor nobody handed out is just a position: an empty page.
    const wellFormed = await get(user, `/api/uploads?cursor=${cursor(`2024-01-01T00:00:00.000Z|${id}`)}`);
    expect(wellFormed).toEqual({ status: 200, body: { uploads: [], nextCursor: null } });
  });

  test('the API needs a token and allows cross-origin calls with it', async () => {
    const res = await fetch(`${ctx.freight.url}/api/uploads`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'ERR_UNAUTHORIZED' });
    const preflight = await fetch(`${ctx.freight.url}/api/uploads`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://app.example.com',
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Authorization/i);
  });

  test('an unknown route is a JSON 404', async () => {
    const res = await fetch(`${ctx.freight.url}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'ERR_ROUTE_NOT_FOUND', message: 'no route GET /nope' });
  });
});
