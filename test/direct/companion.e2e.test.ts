/**
 * The Uppy Companion routes (/s3/multipart), as @uppy/aws-s3 calls them, answering in Companion's JSON shapes.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import {
  freightOnS3,
  listMultipartUploads,
  MiB,
  randomData,
  sha256,
  serviceEnv,
  sha256OfObject,
  startFreight,
  tokenFor,
  uniqueUser,
} from '../helpers/harness.js';

const ctx = freightOnS3('freight-companion');

async function companion(user: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${ctx.freight.url}/s3${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${await tokenFor(user)}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe('Uppy Companion S3 multipart routes', () => {
  test('create, sign, upload, list, complete: the calls @uppy/aws-s3 makes, in order', async () => {
    const user = uniqueUser('uppy');
    // Uppy picks its own part size (5 MiB by default) and never tells the server the file size.
    const data = randomData(12 * MiB + 5);
    const chunks = [data.subarray(0, 5 * MiB), data.subarray(5 * MiB, 10 * MiB), data.subarray(10 * MiB)];

    const created = await companion(user, 'POST', '/multipart', {
      filename: 'holiday.mov',
      type: 'video/quicktime',
      metadata: { name: 'holiday.mov', type: 'video/quicktime', relativePath: null },
    });
    expect(created.status).toBe(200);
    expect(created.body).toEqual({ key: expect.any(String), uploadId: expect.any(String) });
    const { key, uploadId } = created.body;
    const query = `?key=${encodeURIComponent(key)}`;

    const etags: string[] = [];
    for (const [i, chunk] of chunks.entries()) {
      const signed = await companion(user, 'GET', `/multipart/${encodeURIComponent(uploadId)}/${i + 1}${query}`);
      expect(signed.status).toBe(200);
      expect(signed.body).toEqual({ url: expect.stringMatching(/^http/), expires: expect.any(Number) });
      expect(signed.body.expires).toBeGreaterThan(800);
      const put = await fetch(signed.body.url, { method: 'PUT', body: chunk });
      expect(put.status).toBe(200);
      etags.push(put.headers.get('etag')!);
    }

    const batch = await companion(
      user,
      'GET',
      `/multipart/${encodeURIComponent(uploadId)}/batch${query}&partNumbers=1,2`,
    );
    expect(batch.status).toBe(200);
    expect(Object.keys(batch.body.presignedUrls)).toEqual(['1', '2']);

    const listed = await companion(user, 'GET', `/multipart/${encodeURIComponent(uploadId)}${query}`);
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual(chunks.map((chunk, i) => ({ PartNumber: i + 1, Size: chunk.length, ETag: etags[i] })));

    const completed = await companion(user, 'POST', `/multipart/${encodeURIComponent(uploadId)}/complete${query}`, {
      parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })),
    });
    expect(completed.status).toBe(200);
    expect(completed.body).toEqual({ location: expect.stringContaining(key), key, bucket: ctx.bucket.bucket });
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, key)).toBe(sha256(data));
    const [row] = await ctx.sql`select * from file_uploads where s3_upload_id = ${uploadId}`;
    expect(row).toMatchObject({
      protocol: 'direct',
      status: 'completed',
      user_id: user,
      filename: 'holiday.mov',
      mime_type: 'video/quicktime',
    });
    expect(Number(row!.total_size)).toBe(data.length);
  });

  test('abort answers {} and leaves nothing in S3; others cannot see the upload', async () => {
    const user = uniqueUser('uppy');
    const { body } = await companion(user, 'POST', '/multipart', { filename: 'x.bin', type: '' });
    const path = `/multipart/${encodeURIComponent(body.uploadId)}?key=${encodeURIComponent(body.key)}`;
    expect((await companion(uniqueUser('other'), 'GET', path)).status).toBe(404);
    expect((await companion(uniqueUser('other'), 'DELETE', path)).status).toBe(404);
    const aborted = await companion(user, 'DELETE', path);
    expect(aborted).toEqual({ status: 200, body: {} });
    expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.key)).not.toContain(body.key);
  });

  test('an UploadId as long as AWS and R2 hand out (340 characters) reaches Freight: 404, no such upload', async () => {
    const user = uniqueUser('uppy');
    const longId = randomBytes(255).toString('base64url');
    expect(longId).toHaveLength(340);
    const query = '?key=some-key';
    for (const [method, path, body] of [
      ['GET', `/multipart/${longId}/1${query}`, undefined],
      ['GET', `/multipart/${longId}/batch${query}&partNumbers=1,2`, undefined],
      ['GET', `/multipart/${longId}${query}`, undefined],
      ['POST', `/multipart/${longId}/complete${query}`, { parts: [{ PartNumber: 1, ETag: '"x"' }] }],
      ['DELETE', `/multipart/${longId}${query}`, undefined],
    ] as const) {
      const res = await companion(user, method, path, body);
      expect(res, `${method} ${path.slice(0, 40)}…`).toEqual({
        status: 404,
        body: { error: 'ERR_UPLOAD_NOT_FOUND', message: 'upload not found' },
      });
    }
  });

  test('an id of any length on any upload route is a 4xx, never a 500', async () => {
    const user = uniqueUser('uppy');
    const token = await tokenFor(user);
    for (const length of [340, 1000, 5000]) {
      const id = 'a'.repeat(length);
      for (const [method, path] of [
        ['GET', `/s3/multipart/${id}/1?key=k`],
        ['POST', `/api/multipart/${id}/sign`],
        ['GET', `/api/multipart/${id}/parts`],
        ['POST', `/api/multipart/${id}/complete`],
        ['DELETE', `/api/multipart/${id}`],
        ['GET', `/api/uploads/${id}`],
      ] as const) {
        const res = await fetch(`${ctx.freight.url}${path}`, {
          method,
          headers: {
            Authorization: `Bearer ${token}`,
            ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
          },
          body:
            method === 'POST'
              ? JSON.stringify(
                  path.endsWith('sign') ? { parts: [{ partNumber: 1 }] } : { parts: [{ partNumber: 1, etag: 'x' }] },
                )
              : undefined,
        });
        const label = `${method} ${path.slice(0, 30)}… (${length})`;
        // Up to the router's 1000 characters Freight answers itself; beyond, Fastify's router says 414 URI Too Long.
        expect(res.status, label).toBe(length <= 1000 ? 404 : 414);
        expect(await res.json(), label).toMatchObject({ message: expect.any(String) });
      }
    }
  });

  test('parts adding up to more than MAX_UPLOAD_SIZE are refused at complete: 413, nothing assembled, the upload aborted', async () => {
    const small = await startFreight(serviceEnv(ctx.bucket.bucket, { MAX_UPLOAD_SIZE: '8MiB' }));
    try {
      const user = uniqueUser('uppy');
      const call = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(`${small.url}/s3${path}`, {
          method,
          headers: {
            Authorization: `Bearer ${await tokenFor(user)}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as any };
      };
      // Uppy never says the size: the server learns it only from the parts.
      const { body: created } = await call('POST', '/multipart', {
        filename: 'big.bin',
        type: 'application/octet-stream',
      });
      const path = `/multipart/${encodeURIComponent(created.uploadId)}`;
      const query = `?key=${encodeURIComponent(created.key)}`;
      const parts = [];
      for (const partNumber of [1, 2]) {
        const signed = await call('GET', `${path}/${partNumber}${query}`);
        const put = await fetch(signed.body.url, { method: 'PUT', body: randomData(5 * MiB) });
        expect(put.status).toBe(200);
        parts.push({ PartNumber: partNumber, ETag: put.headers.get('etag')! });
      }

      const refused = await call('POST', `${path}/complete${query}`, { parts });
      expect(refused.status).toBe(413);
      expect(refused.body).toEqual({
        error: 'ERR_UPLOAD_TOO_LARGE',
        message: `the parts hold ${10 * MiB} bytes, more than this server's maximum of ${8 * MiB} bytes; the upload was aborted`,
      });
      await expect(
        ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket.bucket, Key: created.key })),
      ).rejects.toMatchObject({
        name: 'NotFound',
      });
      expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.uploadId)).not.toContain(
        created.uploadId,
      );
      const [row] = await ctx.sql`select status, error from file_uploads where s3_upload_id = ${created.uploadId}`;
      expect(row).toEqual({ status: 'aborted', error: refused.body.message });
      expect((await call('POST', `${path}/complete${query}`, { parts })).status).toBe(410);
    } finally {
      await small.close();
    }
  });

  test('a key that does not belong to the upload is refused', async () => {
    const user = uniqueUser('uppy');
    const { body } = await companion(user, 'POST', '/multipart', { filename: 'x.bin' });
    const res = await companion(user, 'GET', `/multipart/${encodeURIComponent(body.uploadId)}/1?key=someone-elses-key`);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/key does not match/);
  });
});
