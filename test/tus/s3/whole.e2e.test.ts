/**
 * The small-upload path (src/tus/s3/whole.ts): a PATCH that brings a whole upload of one part is stored with one
 * PutObject and recorded in one statement, with every guarantee of the ordinary path: the right bytes, the SHA-256
 * recorded and tagged, an announced digest or an Upload-Checksum checked before anything is stored, a body that
 * ends early kept the ordinary way, and a kill -9 before or after the PutObject recovered from.
 */
import { GetObjectTaggingCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { holdingProxy, startServerProcess, type HoldingProxy, type ServerProcess } from '../../helpers/faults.js';
import {
  MiB,
  createTestBucket,
  errorCodeOf,
  eventually,
  freightOnS3,
  listMultipartUploads,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  testS3Client,
  testSql,
  tokenFor,
  uniqueUser,
} from '../../helpers/harness.js';
import { scrape } from '../../helpers/metrics.js';
import { createRawUpload, pausingPatch, startTusUpload, uploadIdOf } from '../../helpers/tus-client.js';
import { createHash } from 'node:crypto';
import { testDatabaseUrl } from '../../helpers/file-database.js';

const ctx = freightOnS3('freight-whole', { S3_PART_SIZE: '8MiB' });
const TUS = { 'Tus-Resumable': '1.0.0' };
const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });
const metadataSha256 = (hex: string) => ({ 'Upload-Metadata': `sha256 ${Buffer.from(hex).toString('base64')}` });
const row = async (sql: ReturnType<typeof testSql>, id: string) =>
  (await sql`select status, error, sha256, stored_offset, hash_state from file_uploads where id = ${id}`)[0];

const S3_CALLS = 'freight_s3_request_duration_seconds_count';

async function objectHead(s3: ReturnType<typeof testS3Client>, bucket: string, key: string) {
  try {
    return await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw error;
  }
}

describe('a whole upload in one PATCH', () => {
  test('is one PutObject: the right bytes, its SHA-256 recorded and tagged, one part, no multipart upload', async () => {
    const headers = await auth(uniqueUser('whole'));
    const data = randomData(3 * MiB + 17);
    const upload = await createRawUpload(ctx.freight.url, headers, data, {
      'Upload-Length': String(data.length),
      'Upload-Metadata': `filename ${Buffer.from('report.pdf').toString('base64')}`,
    });
    const before = await scrape(ctx.freight.url);
    const patched = await upload.patch(0, data.length);
    expect(patched.status).toBe(204);
    expect(patched.headers.get('upload-offset')).toBe(String(data.length));
    const after = await scrape(ctx.freight.url);
    const calls = (operation: string) => after(S3_CALLS, { operation }) - before(S3_CALLS, { operation });
    expect(calls('PutObject')).toBe(1);
    for (const operation of ['CreateMultipartUpload', 'UploadPart', 'ListParts', 'CompleteMultipartUpload'])
      expect(calls(operation)).toBe(0);
    expect(calls('PutObjectTagging')).toBe(0);
    expect(calls('ListObjectsV2')).toBe(0);

    const stored = await sha256OfObject(ctx.s3, ctx.bucket.bucket, upload.id);
    expect(stored).toBe(sha256(data));
    expect(await row(ctx.sql, upload.id)).toMatchObject({
      status: 'completed',
      sha256: stored,
      stored_offset: String(data.length),
    });
    const tags = await ctx.s3.send(new GetObjectTaggingCommand({ Bucket: ctx.bucket.bucket, Key: upload.id }));
    expect(tags.TagSet).toContainEqual({ Key: 'sha256', Value: stored });
    // Typed and named as the multipart path creates an upload's object; one ETag, not a multipart one.
    const head = await objectHead(ctx.s3, ctx.bucket.bucket, upload.id);
    expect(head?.ContentType).toBe('application/octet-stream');
    expect(head?.ContentDisposition).toContain('report.pdf');
    expect(head?.ETag).not.toContain('-');
    const parts = (await (await fetch(`${ctx.freight.url}/api/uploads/${upload.id}/parts`, { headers })).json()) as {
      parts: Array<{ partNumber: number; size: number; etag: string }>;
    };
    expect(parts.parts).toMatchObject([{ partNumber: 1, size: data.length, etag: head?.ETag }]);
    const api = await fetch(`${ctx.freight.url}/api/uploads/${upload.id}`, { headers });
    expect(await api.json()).toMatchObject({ status: 'completed', sha256: stored });
    expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.key)).not.toContain(upload.id);
  });

  test('bodies read into reused buffers: uploads of nearby sizes, at once and one after another, each stored exactly', async () => {
    const headers = await auth(uniqueUser('whole-reuse'));
    // Three rounds of eight: the later rounds' bodies land in buffers the earlier ones gave back (same 64 KiB
    // steps), over longer and shorter contents.
    for (let round = 0; round < 3; round++) {
      const files = Array.from({ length: 8 }, (_, i) => randomData(MiB - round * 1000 - i * 7));
      const ids = await Promise.all(
        files.map(async (data) => {
          const upload = await createRawUpload(ctx.freight.url, headers, data, {
            'Upload-Length': String(data.length),
          });
          expect((await upload.patch(0, data.length)).status).toBe(204);
          return upload.id;
        }),
      );
      for (const [i, id] of ids.entries()) {
        const stored = await sha256OfObject(ctx.s3, ctx.bucket.bucket, id);
        expect(stored).toBe(sha256(files[i]!));
        expect(await row(ctx.sql, id)).toMatchObject({ status: 'completed', sha256: stored });
      }
    }
  });

  test('an announced digest is checked before anything is stored: the right one completes, a wrong one is 460 and rejected', async () => {
    const headers = await auth(uniqueUser('whole-announce'));
    const data = randomData(MiB);
    const right = await createRawUpload(ctx.freight.url, headers, data, {
      'Upload-Length': String(data.length),
      ...metadataSha256(sha256(data)),
    });
    expect((await right.patch(0, data.length)).status).toBe(204);
    expect(await row(ctx.sql, right.id)).toMatchObject({ status: 'completed', sha256: sha256(data) });

    const wrongDigest = sha256(Buffer.from('another file'));
    const wrong = await createRawUpload(ctx.freight.url, headers, data, {
      'Upload-Length': String(data.length),
      ...metadataSha256(wrongDigest),
    });
    const answer = await wrong.patch(0, data.length);
    expect(answer.status).toBe(460);
    expect(await errorCodeOf(answer)).toBe('ERR_DIGEST_MISMATCH');
    expect(await row(ctx.sql, wrong.id)).toMatchObject({
      status: 'rejected',
      sha256: null,
      stored_offset: '0',
      error: expect.stringContaining(wrongDigest),
    });
    expect(await objectHead(ctx.s3, ctx.bucket.bucket, wrong.id)).toBeUndefined();
    expect((await fetch(wrong.url, { method: 'HEAD', headers: { ...TUS, ...headers } })).status).toBe(410);
  });

  test('an Upload-Checksum that does not match is 460: nothing stored, the offset stays 0; the right one completes', async () => {
    const headers = await auth(uniqueUser('whole-checksum'));
    const data = randomData(2 * MiB);
    const upload = await createRawUpload(ctx.freight.url, headers, data);
    const wrongSum = createHash('sha1').update('not these bytes').digest('base64');
    const wrong = await upload.patch(0, data.length, { 'Upload-Checksum': `sha1 ${wrongSum}` });
    expect(wrong.status).toBe(460);
    expect(await errorCodeOf(wrong)).toBe('ERR_CHECKSUM_MISMATCH');
    expect(await row(ctx.sql, upload.id)).toMatchObject({ stored_offset: '0', sha256: null });
    expect(await objectHead(ctx.s3, ctx.bucket.bucket, upload.id)).toBeUndefined();

    const rightSum = createHash('sha1').update(data).digest('base64');
    const right = await upload.patch(0, data.length, { 'Upload-Checksum': `sha1 ${rightSum}` });
    expect(right.status).toBe(204);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, upload.id)).toBe(sha256(data));
  });

  test('a PATCH that brings part of an upload is staged the ordinary way; the rest completes it exactly', async () => {
    const headers = await auth(uniqueUser('whole-part'));
    const data = randomData(3 * MiB);
    const upload = await createRawUpload(ctx.freight.url, headers, data);
    const first = await upload.patch(0, MiB + 5);
    expect(first.status).toBe(204);
    expect(first.headers.get('upload-offset')).toBe(String(MiB + 5));
    const staged = (await ctx.sql`select staging from file_uploads where id = ${upload.id}`)[0]?.staging as {
      tail: { size: number } | null;
    };
    expect(staged.tail?.size).toBe(MiB + 5);
    expect((await upload.patch(MiB + 5, data.length)).status).toBe(204);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, upload.id)).toBe(sha256(data));
    expect(await row(ctx.sql, upload.id)).toMatchObject({ status: 'completed', sha256: sha256(data) });
  });
});

describe('kill -9 around the PutObject of a whole upload', () => {
  const s3 = testS3Client();
  const sql = testSql();
  let bucket: Awaited<ReturnType<typeof createTestBucket>>;
  let database: HoldingProxy;
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    bucket = await createTestBucket(s3, 'freight-whole-crash');
    database = await holdingProxy(testDatabaseUrl());
  });
  afterAll(async () => {
    await server?.stop();
    await database?.down();
    await sql.end();
    await bucket?.drop();
    s3.destroy();
  });

  /** Resolves once `count` tus writes are reading their bodies (past the lock and the row). */
  const writing = (count: number) =>
    eventually(async () => ((await scrape(server!.url))('freight_tus_writes_in_progress') >= count ? true : undefined));

  test('killed while the body streams: nothing is stored, and the client resumes from 0 to the exact file', async () => {
    server = await startServerProcess(serviceEnv(bucket.bucket, { DATABASE_URL: database.url }));
    const token = await tokenFor(uniqueUser('whole-kill'));
    const headers = { ...TUS, Authorization: `Bearer ${token}` };
    const data = randomData(2 * MiB);
    const created = await fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: { ...headers, 'Upload-Length': String(data.length) },
    });
    const url = created.headers.get('location')!;
    const running = server;
    const killed = pausingPatch(url, headers, 0, [data.subarray(0, MiB), data.subarray(MiB)], async (index) => {
      if (index !== 0) return;
      await writing(1);
      await running.kill('SIGKILL');
    }).then(
      (answer) => answer,
      (error: unknown) => error,
    );
    expect(await killed).toBeInstanceOf(Error);
    await server.restart();

    const head = await fetch(url, { method: 'HEAD', headers });
    expect(head.status).toBe(200);
    expect(head.headers.get('upload-offset')).toBe('0');
    expect(await objectHead(s3, bucket.bucket, uploadIdOf(url))).toBeUndefined();
    const resumed = startTusUpload(data, { uploadUrl: url, headers: { Authorization: `Bearer ${token}` } });
    await resumed.done;
    expect(await sha256OfObject(s3, bucket.bucket, uploadIdOf(url))).toBe(sha256(data));
    expect(await row(sql, uploadIdOf(url))).toMatchObject({ status: 'completed', sha256: sha256(data) });
  });

  test('killed after S3 stored the object and before it was recorded: the resumed upload completes exactly, a terminated one leaves no object', async () => {
    server ??= await startServerProcess(serviceEnv(bucket.bucket, { DATABASE_URL: database.url }));
    const token = await tokenFor(uniqueUser('whole-kill-after'));
    const headers = { ...TUS, Authorization: `Bearer ${token}` };
    const files = [randomData(MiB + 3), randomData(2 * MiB + 1)];
    const urls: string[] = [];
    for (const data of files) {
      const created = await fetch(`${server.url}/files/`, {
        method: 'POST',
        headers: { ...headers, 'Upload-Length': String(data.length) },
      });
      urls.push(created.headers.get('location')!);
    }
    const running = server;
    // Both bodies start; once both requests are reading them, the database stops answering, so that the
    // statements that would record them are held; once S3 holds both objects, the process is killed.
    let bothReading: Promise<void> | undefined;
    const sends = files.map((data, i) =>
      pausingPatch(urls[i]!, headers, 0, [data.subarray(0, MiB), data.subarray(MiB)], async (index) => {
        if (index !== 0) return;
        bothReading ??= writing(2).then(() => database.hold());
        await bothReading;
      }).then(
        (answer) => answer,
        (error: unknown) => error,
      ),
    );
    for (const url of urls)
      await eventually(async () => ((await objectHead(s3, bucket.bucket, uploadIdOf(url))) ? true : undefined));
    await running.kill('SIGKILL');
    for (const answer of await Promise.all(sends)) expect(answer).toBeInstanceOf(Error);
    // What the dead process had sent the database is dropped with its connections, never delivered late.
    await database.down();
    await database.up();
    await server.restart();

    for (const url of urls) {
      const head = await fetch(url, { method: 'HEAD', headers });
      expect(head.status).toBe(200);
      expect(head.headers.get('upload-offset')).toBe('0');
      expect(await row(sql, uploadIdOf(url))).toMatchObject({ stored_offset: '0', sha256: null });
    }
    const [resumedUrl, terminatedUrl] = urls as [string, string];
    const resumed = startTusUpload(files[0]!, { uploadUrl: resumedUrl, headers: { Authorization: `Bearer ${token}` } });
    await resumed.done;
    expect(await sha256OfObject(s3, bucket.bucket, uploadIdOf(resumedUrl))).toBe(sha256(files[0]!));
    expect(await row(sql, uploadIdOf(resumedUrl))).toMatchObject({ status: 'completed', sha256: sha256(files[0]!) });

    expect((await fetch(terminatedUrl, { method: 'DELETE', headers })).status).toBe(204);
    expect(await objectHead(s3, bucket.bucket, uploadIdOf(terminatedUrl))).toBeUndefined();
  });
});
