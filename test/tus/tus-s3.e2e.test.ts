/**
 * tus uploads end to end: tus-js-client → Freight → real S3 (Ceph RGW) multipart, state in real PostgreSQL.
 */
import { Readable } from 'node:stream';
import { AbortMultipartUploadCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from 'tus-js-client';
import { describe, expect, inject, test } from 'vitest';
import {
  eventually,
  freightOnS3,
  listAllParts,
  listMultipartUploads,
  MiB,
  outageProxy,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  startFreight,
  tokenFor,
  uniqueUser,
} from '../helpers/harness.js';
import { createRawUpload, stalledPatch, startTusUpload, uploadIdOf } from '../helpers/tus-client.js';

// 5 MiB parts (S3's minimum) so that tens of MiB make many parts; a PATCH whose body stops for 2 s is ended
// by the server with what arrived stored (what a test that "cuts the link" waits for).
const ctx = freightOnS3('freight-tus', { S3_PART_SIZE: '5MiB', UPLOAD_STALL_TIMEOUT: '2s' });

const uploadRow = async (id: string) => {
  const [row] = await ctx.sql`select * from file_uploads where id = ${id}`;
  return row;
};
const partRows = (id: string) =>
  ctx.sql`select part_number, size, etag, status from upload_parts where upload_id = ${id} order by part_number`;

async function s3UploadIdOf(id: string): Promise<string> {
  const row = await uploadRow(id);
  return row?.s3_upload_id as string;
}

/** What S3 lists for the upload and what Postgres recorded, side by side. */
async function partsInS3AndDb(id: string) {
  const parts = await listAllParts(ctx.s3, ctx.bucket.bucket, id, await s3UploadIdOf(id));
  const s3Parts = parts.map((p) => ({ partNumber: p.PartNumber, size: p.Size, etag: p.ETag }));
  const dbParts = (await partRows(id)).map((r) => ({ partNumber: r.part_number, size: Number(r.size), etag: r.etag }));
  return { s3Parts, dbParts };
}

async function headOffset(url: string, token: string): Promise<number> {
  const res = await fetch(url, {
    method: 'HEAD',
    headers: { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(200);
  return Number(res.headers.get('upload-offset'));
}

describe('tus uploads onto S3 multipart', () => {
  test('a 64 MiB file sent with tus-js-client arrives byte-identical, one part row per S3 part', async () => {
    const user = uniqueUser('alice');
    const data = randomData(64 * MiB + 12_345);
    const run = startTusUpload(data, {
      endpoint: `${ctx.freight.url}/files/`,
      headers: { Authorization: `Bearer ${await tokenFor(user)}` },
      metadata: { filename: 'big.bin', filetype: 'application/octet-stream' },
    });
    const id = uploadIdOf(await run.done);

    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(data));
    const row = await uploadRow(id);
    expect(row).toMatchObject({
      user_id: user,
      protocol: 'tus',
      status: 'completed',
      filename: 'big.bin',
      mime_type: 'application/octet-stream',
      storage_key: id,
    });
    expect(Number(row!.total_size)).toBe(data.length);
    expect(Number(row!.bytes_received)).toBe(data.length);
    expect(row!.completed_at).toBeInstanceOf(Date);
    expect(row!.s3_upload_id).toBeTruthy();

    // 64 MiB + 12,345 B in 5 MiB parts: 12 full parts and a 13th of 4 MiB + 12,345 B.
    const parts = await partRows(id);
    expect(parts.map((p) => p.part_number)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    expect(parts.slice(0, 12).every((p) => Number(p.size) === 5 * MiB)).toBe(true);
    expect(Number(parts[12]!.size)).toBe(4 * MiB + 12_345);
    expect(parts.every((p) => p.status === 'stored' && /^"?[0-9a-f]{32}"?$/.test(p.etag))).toBe(true);

    // The multipart upload is assembled: no longer listed as in progress.
    expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.key)).not.toContain(id);
    const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket.bucket, Key: id }));
    expect(head.ContentLength).toBe(data.length);
  });

  test('an upload cut part-way is resumed by a new client from the server offset, sending only the rest', async () => {
    const user = uniqueUser('bob');
    const token = await tokenFor(user);
    const data = randomData(32 * MiB);
    const cutAt = 13 * MiB;

    // Client A creates the upload and streams the file in one PATCH; after 13 MiB the link goes dead: the server
    // stores what arrived once the body has stalled, then the link is cut.
    const created = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}`, 'Upload-Length': String(data.length) },
    });
    const url = created.headers.get('location')!;
    const id = uploadIdOf(url);
    const first = stalledPatch(url, { Authorization: `Bearer ${token}` }, data, 0, cutAt);
    await eventually(async () => (Number((await uploadRow(id))?.bytes_received) === cutAt ? true : undefined));
    first.cut();
    await first.settled;

    // The server keeps what arrived: the offset it reports, the row and the part rows agree with S3.
    const offset = await headOffset(url, token);
    expect(offset).toBe(cutAt);
    expect(Number((await uploadRow(id))?.bytes_received)).toBe(cutAt);
    expect((await uploadRow(id))?.status).toBe('uploading');
    const { s3Parts, dbParts } = await partsInS3AndDb(id);
    expect(dbParts).toEqual(s3Parts);
    // Two whole parts; the 3 MiB after them wait, staged, for the bytes that complete part 3.
    expect(s3Parts.map((p) => p.size)).toEqual([5 * MiB, 5 * MiB]);
    expect((await uploadRow(id))?.staging).toMatchObject({ partNumber: 3, tail: { size: 3 * MiB } });

    // Client B knows only the upload URL: it asks for the offset and sends the rest.
    const second = startTusUpload(data, {
      uploadUrl: url,
      headers: { Authorization: `Bearer ${token}` },
    });
    await second.done;
    const patches = second.requests.filter((r) => r.method === 'PATCH');
    expect(second.requests[0]?.method).toBe('HEAD');
    expect(patches).toHaveLength(1);
    expect(patches[0]?.uploadOffset).toBe(String(offset));
    expect(Math.min(...second.progress)).toBeGreaterThanOrEqual(offset);

    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(data));
    const row = await uploadRow(id);
    expect(row?.status).toBe('completed');
    expect(Number(row?.bytes_received)).toBe(data.length);
    const parts = await partRows(id);
    expect(parts.map((p) => p.part_number)).toEqual(parts.map((_, i) => i + 1));
    expect(parts.reduce((sum, p) => sum + Number(p.size), 0)).toBe(data.length);
  });

  test('an upload of deferred length gets its length from the last PATCH', async () => {
    const user = uniqueUser('carol');
    const data = randomData(12 * MiB + 7);
    const stream = Readable.from([data.subarray(0, 4 * MiB), data.subarray(4 * MiB)]);
    const run = startTusUpload(stream as unknown as Buffer, {
      endpoint: `${ctx.freight.url}/files/`,
      headers: { Authorization: `Bearer ${await tokenFor(user)}` },
      uploadLengthDeferred: true,
      chunkSize: 5 * MiB,
      metadata: { filename: 'stream.bin' },
    });
    const id = uploadIdOf(await run.done);
    expect(run.requests[0]?.method).toBe('POST');
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(data));
    const row = await uploadRow(id);
    expect(row?.status).toBe('completed');
    expect(Number(row?.total_size)).toBe(data.length);
  });

  test('a deferred-length upload has no length in the database until it is declared', async () => {
    const token = await tokenFor(uniqueUser('dave'));
    const headers = { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}` };
    const created = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...headers, 'Upload-Defer-Length': '1' },
    });
    expect(created.status).toBe(201);
    const url = created.headers.get('location')!;
    const id = uploadIdOf(url);
    expect((await uploadRow(id))?.total_size).toBeNull();
    const head = await fetch(url, { method: 'HEAD', headers });
    expect(head.headers.get('upload-defer-length')).toBe('1');

    const body = randomData(1000);
    const patched = await fetch(url, {
      method: 'PATCH',
      headers: {
        ...headers,
        'Upload-Offset': '0',
        'Upload-Length': '1000',
        'Content-Type': 'application/offset+octet-stream',
      },
      body,
    });
    expect(patched.status).toBe(204);
    expect(patched.headers.get('upload-offset')).toBe('1000');
    const row = await uploadRow(id);
    expect(row).toMatchObject({ status: 'completed' });
    expect(Number(row?.total_size)).toBe(1000);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(body));
  });

  test('termination aborts the S3 multipart upload, marks the row aborted, and the upload is gone', async () => {
    const token = await tokenFor(uniqueUser('erin'));
    const headers = { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}` };
    const created = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...headers, 'Upload-Length': String(20 * MiB) },
    });
    const url = created.headers.get('location')!;
    const id = uploadIdOf(url);
    const patched = await fetch(url, {
      method: 'PATCH',
      headers: { ...headers, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: randomData(7 * MiB),
    });
    expect(patched.status).toBe(204);
    expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.key)).toContain(id);

    await Upload.terminate(url, { headers: { Authorization: `Bearer ${token}` }, retryDelays: [] });

    expect((await uploadRow(id))?.status).toBe('aborted');
    expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.key)).not.toContain(id);
    for (const key of [`${id}.info`, `${id}.part`]) {
      await expect(ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket.bucket, Key: key }))).rejects.toMatchObject({
        $metadata: { httpStatusCode: 404 },
      });
    }
    const head = await fetch(url, { method: 'HEAD', headers });
    expect(head.status).toBe(410);
    const resumed = await fetch(url, {
      method: 'PATCH',
      headers: { ...headers, 'Upload-Offset': String(7 * MiB), 'Content-Type': 'application/offset+octet-stream' },
      body: randomData(10),
    });
    expect(resumed.status).toBe(410);
  });

  test('a zero-byte upload completes as an empty object', async () => {
    const token = await tokenFor(uniqueUser('fay'));
    const created = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}`, 'Upload-Length': '0' },
    });
    expect(created.status).toBe(201);
    const id = uploadIdOf(created.headers.get('location')!);
    const row = await eventually(async () => {
      const found = await uploadRow(id);
      return found?.status === 'completed' ? found : undefined;
    });
    expect(Number(row.total_size)).toBe(0);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(new Uint8Array()));
  });

  test('a storage outage marks the upload failed with the error and answers 503; it resumes once storage is back', async () => {
    const proxy = await outageProxy(inject('s3').endpoint);
    const flaky = await startFreight(serviceEnv(ctx.bucket.bucket, { S3_ENDPOINT: proxy.url }));
    try {
      const token = await tokenFor(uniqueUser('gus'));
      const headers = { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}` };
      const data = randomData(6 * MiB);
      const created = await fetch(`${flaky.url}/files/`, {
        method: 'POST',
        headers: { ...headers, 'Upload-Length': String(data.length) },
      });
      const url = created.headers.get('location')!;
      const id = uploadIdOf(url);

      await proxy.down();
      const res = await fetch(url, {
        method: 'PATCH',
        headers: { ...headers, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: data,
      });
      expect(res.status).toBe(503);
      expect(await res.text()).toMatch(/^ERR_STORAGE_UNAVAILABLE: storage unreachable \(ECONNREFUSED\)/);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(await uploadRow(id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/ECONNREFUSED/) });

      await proxy.up();
      const resumed = startTusUpload(data, { uploadUrl: url, headers: { Authorization: `Bearer ${token}` } });
      await resumed.done;
      expect(await uploadRow(id)).toMatchObject({ status: 'completed', error: null });
      expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(data));
    } finally {
      await flaky.close();
      await proxy.down();
    }
  });

  test('an upload whose multipart upload vanished from storage is gone (410) and lost, not reported complete', async () => {
    const token = await tokenFor(uniqueUser('ida'));
    const headers = { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}` };
    const data = randomData(8 * MiB);
    const { url, id, patch } = await createRawUpload(ctx.freight.url, headers, data);
    expect((await patch(0, 6 * MiB)).status).toBe(204);
    // A bucket lifecycle rule or an operator aborts it behind Freight's back.
    await ctx.s3.send(
      new AbortMultipartUploadCommand({ Bucket: ctx.bucket.bucket, Key: id, UploadId: await s3UploadIdOf(id) }),
    );

    // The next write finds out: 410, and the upload is lost for good (its offset no longer claims any bytes).
    const last = await patch(6 * MiB, data.length);
    expect(last.status).toBe(410);
    expect(await last.text()).toMatch(/multipart upload no longer exists/);
    expect((await fetch(url, { method: 'HEAD', headers })).status).toBe(410);
    expect(await uploadRow(id)).toMatchObject({
      status: 'lost',
      error: 'the multipart upload no longer exists in storage',
      stored_offset: '0',
    });
  });

  test('parts that do not match what was recorded are never assembled; once they do, the next HEAD finishes the upload', async () => {
    const token = await tokenFor(uniqueUser('hal'));
    const headers = { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}` };
    const data = randomData(11 * MiB);
    const { url, id, patch } = await createRawUpload(ctx.freight.url, headers, data);
    expect((await patch(0, 10 * MiB)).status).toBe(204);

    // Part 1 as recorded no longer matches the part S3 holds.
    const [recorded] = await ctx.sql`select etag from upload_parts where upload_id = ${id} and part_number = 1`;
    await ctx.sql`update upload_parts set etag = '"00000000000000000000000000000000"' where upload_id = ${id} and part_number = 1`;
    const last = await patch(10 * MiB, data.length);
    expect(last.status).toBe(409);
    expect(await last.text()).toMatch(/cannot complete the upload: part 1: ETag/);
    expect(await uploadRow(id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/part 1: ETag/) });
    expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.key)).toContain(id);

    // Every byte is stored; with the record repaired, the resume check (HEAD) assembles the object.
    await ctx.sql`update upload_parts set etag = ${recorded!.etag} where upload_id = ${id} and part_number = 1`;
    expect(await headOffset(url, token)).toBe(data.length);
    expect((await uploadRow(id))?.status).toBe('completed');
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(data));
  });

  test('resume checks are answered from Postgres while S3 is down; an upload S3 has yet to assemble is 423 until it is back', async () => {
    const proxy = await outageProxy(inject('s3').endpoint);
    const flaky = await startFreight(serviceEnv(ctx.bucket.bucket, { S3_ENDPOINT: proxy.url, S3_PART_SIZE: '5MiB' }));
    try {
      const token = await tokenFor(uniqueUser('jay'));
      const headers = { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}` };
      const data = randomData(8 * MiB);
      const { url, id, patch } = await createRawUpload(flaky.url, headers, data);
      expect((await patch(0, 6 * MiB)).status).toBe(204);

      // With S3 down, the resume check still answers, from Postgres; a write is 503 with Retry-After.
      await proxy.down();
      const head = await fetch(url, { method: 'HEAD', headers });
      expect(head.status).toBe(200);
      expect(head.headers.get('upload-offset')).toBe(String(6 * MiB));
      expect(head.headers.get('upload-length')).toBe(String(data.length));
      const refused = await patch(6 * MiB, data.length);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(Number((await uploadRow(id))?.stored_offset)).toBe(6 * MiB);

      // Every byte stored, but S3 failed to assemble the object (here: down at that very moment).
      await proxy.up();
      const [part1] = await ctx.sql`select etag from upload_parts where upload_id = ${id} and part_number = 1`;
      await ctx.sql`update upload_parts set etag = 'x' where upload_id = ${id} and part_number = 1`;
      expect((await patch(6 * MiB, data.length)).status).toBe(409);
      await ctx.sql`update upload_parts set etag = ${part1!.etag} where upload_id = ${id} and part_number = 1`;
      await proxy.down();
      // The check cannot finish it now: 423 (a client retries), never a failure that makes it start over.
      const locked = await fetch(url, { method: 'HEAD', headers });
      expect(locked.status).toBe(423);
      expect(locked.headers.get('retry-after')).toBe('5');
      await proxy.up();
      const finished = await fetch(url, { method: 'HEAD', headers });
      expect(finished.status).toBe(200);
      expect(finished.headers.get('upload-offset')).toBe(String(data.length));
      expect((await uploadRow(id))?.status).toBe('completed');
      expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(data));
    } finally {
      await flaky.close();
      await proxy.down();
    }
  });
});
