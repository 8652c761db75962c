/**
 * tus concatenation on S3: partial uploads joined into a final one (by S3 itself where it allows), so that
 * tus-js-client's parallelUploads works; what the spec says of final uploads; a digest for the joined file.
 */
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import {
  MiB,
  errorCodeOf,
  eventually,
  freightOnS3,
  isolatedDatabase,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../helpers/harness.js';
import { holdingProxy, type HoldingProxy } from '../helpers/proxy.js';
import { createRawUpload, startTusUpload } from '../helpers/tus-client.js';

const ctx = freightOnS3('freight-concat', { S3_PART_SIZE: '5MiB', CONCAT_MAX_PARTIALS: '4' });
const TUS = { 'Tus-Resumable': '1.0.0' };

const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });
const row = async (id: string) => (await ctx.sql`select * from file_uploads where id = ${id}`)[0];

/** A finished partial upload of `data`; returns its URL. */
async function partial(headers: Record<string, string>, data: Buffer<ArrayBuffer>): Promise<string> {
  const upload = await createRawUpload(ctx.freight.url, headers, data, {
    'Upload-Length': String(data.length),
    'Upload-Concat': 'partial',
  });
  if (data.length > 0) expect((await upload.patch(0, data.length)).status).toBe(204);
  return upload.url;
}

async function final(
  headers: Record<string, string>,
  urls: string[],
  extra: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${ctx.freight.url}/files/`, {
    method: 'POST',
    headers: { ...TUS, ...headers, ...extra, 'Upload-Concat': `final;${urls.join(' ')}` },
  });
}

/** The upload's row once its status is one of `statuses` (by default: its assembly is over); else its last state. */
async function assembled(id: string, statuses = ['completed', 'failed', 'rejected'], timeoutMs = 30_000, read = row) {
  let current: Awaited<ReturnType<typeof row>>;
  try {
    return await eventually(async () => {
      current = await read(id);
      return current && statuses.includes(current.status as string) ? current : undefined;
    }, timeoutMs);
  } catch {
    throw new Error(
      `upload ${id} is not ${statuses.join(' or ')} after ${timeoutMs} ms: ${current?.status} (${current?.error})`,
    );
  }
}

describe('concatenation', () => {
  test('tus-js-client with parallelUploads: 3 stores a 66 MiB file byte-identical, joined by S3 from its three partials', async () => {
    const user = uniqueUser('parallel');
    const data = randomData(66 * MiB + 12_345);
    const run = startTusUpload(data, {
      endpoint: `${ctx.freight.url}/files/`,
      headers: await auth(user),
      parallelUploads: 3,
      metadata: { filename: 'parallel.bin' },
    });
    const url = await run.done;
    const id = url.split('/').pop()!;
    expect(run.requests.filter((r) => r.method === 'POST')).toHaveLength(4);
    const done = await assembled(id);
    expect(done).toMatchObject({
      status: 'completed',
      concat: 'final',
      filename: 'parallel.bin',
      sha256: sha256(data),
    });
    expect(Number(done.total_size)).toBe(data.length);
    expect(done.concat_partials).toHaveLength(3);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(data));
    // Joined by S3: one copied part per partial.
    const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket.bucket, Key: id }));
    expect(head.ETag).toMatch(/-3"$/);
    const api = (await (
      await fetch(`${ctx.freight.url}/api/uploads/${id}`, { headers: await auth(user) })
    ).json()) as Record<string, unknown>;
    expect(api).toMatchObject({
      status: 'completed',
      concat: 'final',
      partials: done.concat_partials,
      sha256: sha256(data),
    });
  });

  test('raw: partials of any size; HEAD of partial and final; a PATCH on the final is 403', async () => {
    const headers = await auth(uniqueUser('raw'));
    const a = randomData(5 * MiB + 1);
    const b = randomData(7 * MiB);
    const c = randomData(3 * MiB + 5);
    const [ua, ub, ua2, uc] = [
      await partial(headers, a),
      await partial(headers, b),
      await partial(headers, a),
      await partial(headers, c),
    ];
    const created = await final(headers, [ua, ub, ua2, uc]);
    expect(created.status).toBe(201);
    const finalUrl = created.headers.get('location')!;
    const id = finalUrl.split('/').pop()!;
    const expected = Buffer.concat([a, b, a, c]);
    expect(await assembled(id)).toMatchObject({ status: 'completed', error: null, sha256: sha256(expected) });
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(expected));

    const headFinal = await fetch(finalUrl, { method: 'HEAD', headers: { ...TUS, ...headers } });
    expect(headFinal.headers.get('upload-concat')).toBe(`final;${[ua, ub, ua2, uc].join(' ')}`);
    expect(headFinal.headers.get('upload-offset')).toBe(String(expected.length));
    expect(headFinal.headers.get('upload-length')).toBe(String(expected.length));
    const headPartial = await fetch(ua, { method: 'HEAD', headers: { ...TUS, ...headers } });
    expect(headPartial.headers.get('upload-concat')).toBe('partial');

    const patched = await fetch(finalUrl, {
      method: 'PATCH',
      headers: {
        ...TUS,
        ...headers,
        'Upload-Offset': String(expected.length),
        'Content-Type': 'application/offset+octet-stream',
      },
      body: 'x',
    });
    expect(patched.status).toBe(403);
    expect(await errorCodeOf(patched)).toBe('ERR_UPLOAD_IS_FINAL');
  });

  test('a partial under 5 MiB before others (S3 will not join it): the bytes are streamed through, exact', async () => {
    const headers = await auth(uniqueUser('stream'));
    const parts = [randomData(2 * MiB), randomData(6 * MiB + 7), randomData(1)];
    const urls = [];
    for (const data of parts) urls.push(await partial(headers, data));
    const created = await final(headers, urls);
    const id = created.headers.get('location')!.split('/').pop()!;
    const expected = Buffer.concat(parts);
    expect(await assembled(id)).toMatchObject({ status: 'completed', sha256: sha256(expected) });
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(expected));
  });

  test('what a final upload may not be made of: another user’s partial (404), an unfinished one, a non-partial, a length', async () => {
    const headers = await auth(uniqueUser('rules'));
    const mine = await partial(headers, randomData(MiB));
    const theirs = await partial(await auth(uniqueUser('other')), randomData(MiB));
    const stranger = await final(headers, [mine, theirs]);
    expect(stranger.status).toBe(404);

    const unfinished = await createRawUpload(ctx.freight.url, headers, randomData(MiB), {
      'Upload-Length': String(MiB),
      'Upload-Concat': 'partial',
    });
    const early = await final(headers, [mine, unfinished.url]);
    expect(early.status).toBe(400);
    expect(await early.text()).toMatch(/not complete/);

    const plain = await createRawUpload(ctx.freight.url, headers, randomData(10));
    expect((await plain.patch(0, 10)).status).toBe(204);
    expect((await final(headers, [mine, plain.url])).status).toBe(400);

    expect((await final(headers, [mine], { 'Upload-Length': String(MiB) })).status).toBe(400);
    expect((await final(headers, ['/elsewhere/x'])).status).toBe(404);
  });

  test('each partial named once (a repeat, even as another URL of it, is 400), at most CONCAT_MAX_PARTIALS of them (400)', async () => {
    const headers = await auth(uniqueUser('bounds'));
    const urls: string[] = [];
    for (let i = 0; i < 5; i++) urls.push(await partial(headers, randomData(1_000 + i)));
    const [u0, u1] = urls as [string, string];

    const repeated = await final(headers, [u0, u1, u0]);
    expect(repeated.status).toBe(400);
    expect(await repeated.text()).toContain(`${u0} more than once`);
    // The same upload, once absolute and once relative.
    const aliased = await final(headers, [u0, new URL(u0).pathname]);
    expect(aliased.status).toBe(400);
    expect(await aliased.text()).toMatch(/one partial upload twice/);
    // CONCAT_MAX_PARTIALS is 4 here.
    const tooMany = await final(headers, urls);
    expect(tooMany.status).toBe(400);
    expect(await tooMany.text()).toMatch(/names 5 partial uploads; this server joins at most 4/);
    // Nothing was recorded for any of them: each partial is still free.
    const rows =
      await ctx.sql`select count(*)::int as n from file_uploads where concat = 'final' and concat_partials && ${urls.map((url) => url.split('/').pop()!)}::uuid[]`;
    expect(rows[0]?.n).toBe(0);
    expect((await final(headers, urls.slice(0, 4))).status).toBe(201);
  });

  test('a partial already part of another final upload is refused (409 ERR_PARTIAL_IN_USE, naming it) until that final is terminated', async () => {
    const headers = await auth(uniqueUser('held'));
    const [a, b, c] = [randomData(2_000), randomData(3_000), randomData(4_000)];
    const [ua, ub, uc] = [await partial(headers, a), await partial(headers, b), await partial(headers, c)];
    const first = await final(headers, [ua, ub]);
    expect(first.status).toBe(201);
    const firstUrl = first.headers.get('location')!;
    const firstId = firstUrl.split('/').pop()!;
    expect(await assembled(firstId)).toMatchObject({ status: 'completed' });

    const second = await final(headers, [uc, ub]);
    expect(second.status).toBe(409);
    const body = await second.text();
    expect(body).toMatch(/^ERR_PARTIAL_IN_USE: /);
    expect(body).toContain(ub);
    expect(body).toContain(firstId);

    // Two finals racing for one partial: exactly one is recorded.
    const raced = await Promise.all([final(headers, [uc]), final(headers, [uc])]);
    expect(raced.map((res) => res.status).sort()).toEqual([201, 409]);

    // The first final terminated (tus DELETE), its partials are free again.
    const deleted = await fetch(firstUrl, { method: 'DELETE', headers: { ...TUS, ...headers } });
    expect(deleted.status).toBe(204);
    const third = await final(headers, [ua, ub]);
    expect(third.status).toBe(201);
    const thirdId = third.headers.get('location')!.split('/').pop()!;
    expect(await assembled(thirdId)).toMatchObject({ status: 'completed', sha256: sha256(Buffer.concat([a, b])) });
  });

  test('a final upload whose joined bytes are not the digest its client announced is rejected, never completed', async () => {
    const headers = await auth(uniqueUser('digest'));
    const urls = [await partial(headers, randomData(5 * MiB)), await partial(headers, randomData(MiB))];
    const wrong = sha256(Buffer.from('something else'));
    const created = await final(headers, urls, {
      'Upload-Metadata': `sha256 ${Buffer.from(wrong).toString('base64')}`,
    });
    const id = created.headers.get('location')!.split('/').pop()!;
    expect(await assembled(id)).toMatchObject({
      status: 'rejected',
      sha256: null,
      error: expect.stringContaining(wrong),
    });
  });
});

describe('concatenation through an S3 outage', () => {
  let s3Proxy: HoldingProxy;
  let freight: RunningFreight;
  // A database of its own: every Freight that starts takes up the unfinished final uploads of its database, and
  // those of the other test files' servers (on other buckets) must not reach for this one's.
  let db: Awaited<ReturnType<typeof isolatedDatabase>>;
  let sql: ReturnType<typeof postgres>;
  const isolatedRow = async (id: string) => (await sql`select * from file_uploads where id = ${id}`)[0];
  beforeAll(async () => {
    db = await isolatedDatabase('freight_concat_outage');
    sql = postgres(db.url, { onnotice: () => {} });
    s3Proxy = await holdingProxy(inject('s3').endpoint);
    freight = await startFreight(
      serviceEnv(ctx.bucket.bucket, {
        DATABASE_URL: db.url,
        S3_ENDPOINT: s3Proxy.url,
        S3_PART_SIZE: '5MiB',
        S3_REQUEST_TIMEOUT: '2s',
      }),
    );
  });
  afterAll(async () => {
    await freight?.close();
    await s3Proxy?.down();
    await sql?.end();
    await db?.drop();
  });

  test('S3 down while a final upload is assembled: it is failed with the reason, then assembled once S3 is back', async () => {
    const headers = await auth(uniqueUser('outage'));
    const parts = [randomData(5 * MiB), randomData(2 * MiB + 3)];
    const urls: string[] = [];
    for (const data of parts) {
      const upload = await createRawUpload(freight.url, headers, data, {
        'Upload-Length': String(data.length),
        'Upload-Concat': 'partial',
      });
      expect((await upload.patch(0, data.length)).status).toBe(204);
      urls.push(upload.url);
    }
    await s3Proxy.down();
    const created = await fetch(`${freight.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, ...headers, 'Upload-Concat': `final;${urls.join(' ')}` },
    });
    expect(created.status).toBe(201);
    const id = created.headers.get('location')!.split('/').pop()!;
    const failed = await assembled(id, ['failed'], 30_000, isolatedRow);
    expect(failed.error).toMatch(/storage|S3|connect/i);
    await s3Proxy.up();
    // The next try comes 5 s after the failure.
    const completed = await assembled(id, ['completed'], 60_000, isolatedRow);
    expect(completed).toMatchObject({
      error: null,
      sha256: sha256(Buffer.concat(parts)),
      total_size: String(7 * MiB + 3),
    });
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(Buffer.concat(parts)));
  });
});
