/**
 * Every stored file is the file that was sent: the tus checksum extension (per PATCH), and the whole upload's
 * SHA-256 computed while it streams, recorded at completion, checked against the one the client announced, and
 * still right after crashes and instance changes.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectTaggingCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startServerProcess, type ServerProcess } from '../helpers/faults.js';
import {
  MiB,
  errorCodeOf,
  freightOnS3,
  listMultipartUploads,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  startFreight,
  tokenFor,
  uniqueUser,
} from '../helpers/harness.js';
import { createRawUpload, startTusUpload } from '../helpers/tus-client.js';

const ctx = freightOnS3('freight-integrity', { S3_PART_SIZE: '5MiB' });
const TUS = { 'Tus-Resumable': '1.0.0' };

const digestOf = (algorithm: string, data: Uint8Array) => createHash(algorithm).update(data).digest('base64');
const row = async (id: string) =>
  (await ctx.sql`select status, error, sha256, stored_offset from file_uploads where id = ${id}`)[0];
const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });
const metadataSha256 = (hex: string) => ({ 'Upload-Metadata': `sha256 ${Buffer.from(hex).toString('base64')}` });

describe('the checksum extension', () => {
  test('OPTIONS offers it with sha1, md5 and sha256', async () => {
    const res = await fetch(`${ctx.freight.url}/files/`, { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('tus-extension')?.split(',')).toEqual(expect.arrayContaining(['checksum', 'concatenation']));
    expect(res.headers.get('tus-checksum-algorithm')?.split(',').sort()).toEqual(['md5', 'sha1', 'sha256']);
  });

  test('a matching checksum is 204; a wrong one is 460 and the offset stays; an unknown algorithm is 400', async () => {
    const headers = await auth(uniqueUser('sum'));
    const data = randomData(12 * MiB + 3);
    const upload = await createRawUpload(ctx.freight.url, headers, data);
    const first = data.subarray(0, 7 * MiB);
    const ok = await upload.patch(0, 7 * MiB, { 'Upload-Checksum': `sha1 ${digestOf('sha1', first)}` });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('upload-offset')).toBe(String(7 * MiB));

    // The rest with the checksum of other bytes: discarded, though a whole part of it reached S3 meanwhile.
    const wrong = await upload.patch(7 * MiB, data.length, {
      'Upload-Checksum': `md5 ${digestOf('md5', Buffer.from('not these bytes'))}`,
    });
    expect(wrong.status).toBe(460);
    expect(await errorCodeOf(wrong)).toBe('ERR_CHECKSUM_MISMATCH');
    expect(Number((await row(upload.id))?.stored_offset)).toBe(7 * MiB);
    const head = await fetch(upload.url, { method: 'HEAD', headers: { ...TUS, ...headers } });
    expect(head.headers.get('upload-offset')).toBe(String(7 * MiB));

    for (const value of ['crc32 AAAAAA==', 'sha1', 'sha1 not-base64!', `sha256 ${digestOf('sha1', first)}`]) {
      const refused = await upload.patch(7 * MiB, data.length, { 'Upload-Checksum': value });
      expect(refused.status, value).toBe(400);
      expect(await errorCodeOf(refused)).toBe('ERR_BAD_REQUEST');
    }

    const rest = data.subarray(7 * MiB);
    const done = await upload.patch(7 * MiB, data.length, { 'Upload-Checksum': `sha256 ${digestOf('sha256', rest)}` });
    expect(done.status).toBe(204);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, upload.id)).toBe(sha256(data));
  });

  test('a client that checksums every chunk, and resends the one a flipped bit spoiled, stores the file exactly', async () => {
    const headers = await auth(uniqueUser('chunks'));
    const data = randomData(40 * MiB + 77);
    const upload = await createRawUpload(ctx.freight.url, headers, data);
    const chunk = 6 * MiB + 513;
    const answers: number[] = [];
    let spoiled = false;
    for (let offset = 0; offset < data.length; ) {
      const end = Math.min(offset + chunk, data.length);
      const body = Buffer.from(data.subarray(offset, end));
      const sum = `sha1 ${digestOf('sha1', body)}`;
      // One chunk is damaged on its way (after its checksum was computed), once.
      if (!spoiled && offset >= 12 * MiB) {
        body[body.length >> 1]! ^= 0x01;
        spoiled = true;
      }
      const res = await fetch(upload.url, {
        method: 'PATCH',
        headers: {
          ...TUS,
          ...headers,
          'Upload-Offset': String(offset),
          'Content-Type': 'application/offset+octet-stream',
          'Upload-Checksum': sum,
        },
        body,
      });
      answers.push(res.status);
      if (res.status === 204) offset = Number(res.headers.get('upload-offset'));
      else expect(res.status).toBe(460);
    }
    expect(answers.filter((status) => status === 460)).toHaveLength(1);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, upload.id)).toBe(sha256(data));
    expect((await row(upload.id))?.sha256).toBe(sha256(data));
  });
});

describe('the whole upload SHA-256', () => {
  test('recorded at completion for 64 MiB in odd-sized PATCHes, equal to the object, and on its tags', async () => {
    const headers = await auth(uniqueUser('digest'));
    const data = randomData(64 * MiB + 4321);
    const upload = await createRawUpload(ctx.freight.url, headers, data);
    const cuts = [0, 1, 4 * MiB + 1, 4 * MiB + 4, 17 * MiB, 23 * MiB - 7, 31 * MiB, 50 * MiB + 9, data.length];
    for (let i = 0; i + 1 < cuts.length; i++) expect((await upload.patch(cuts[i]!, cuts[i + 1]!)).status).toBe(204);
    const stored = await sha256OfObject(ctx.s3, ctx.bucket.bucket, upload.id);
    expect(stored).toBe(sha256(data));
    expect(await row(upload.id)).toMatchObject({ status: 'completed', sha256: stored });
    const tags = await ctx.s3.send(new GetObjectTaggingCommand({ Bucket: ctx.bucket.bucket, Key: upload.id }));
    expect(tags.TagSet).toContainEqual({ Key: 'sha256', Value: stored });
    const api = await fetch(`${ctx.freight.url}/api/uploads/${upload.id}`, { headers });
    expect(await api.json()).toMatchObject({ sha256: stored });
  });

  test('the digest a client announced: the right one completes, a wrong one is rejected (460), never completed', async () => {
    const headers = await auth(uniqueUser('announce'));
    const data = randomData(11 * MiB);
    const right = await createRawUpload(ctx.freight.url, headers, data, {
      'Upload-Length': String(data.length),
      ...metadataSha256(sha256(data)),
    });
    expect((await right.patch(0, data.length)).status).toBe(204);
    expect((await row(right.id))?.status).toBe('completed');

    const wrongDigest = sha256(Buffer.from('another file'));
    const wrong = await createRawUpload(ctx.freight.url, headers, data, {
      'Upload-Length': String(data.length),
      ...metadataSha256(wrongDigest),
    });
    expect((await wrong.patch(0, 6 * MiB)).status).toBe(204);
    const last = await wrong.patch(6 * MiB, data.length);
    expect(last.status).toBe(460);
    expect(await errorCodeOf(last)).toBe('ERR_DIGEST_MISMATCH');
    expect(await row(wrong.id)).toMatchObject({
      status: 'rejected',
      sha256: null,
      error: expect.stringContaining(wrongDigest),
    });
    const api = (await (await fetch(`${ctx.freight.url}/api/uploads/${wrong.id}`, { headers })).json()) as Record<
      string,
      unknown
    >;
    expect(api).toMatchObject({ status: 'rejected', error: expect.stringMatching(/sha256 mismatch/) });
    expect((await fetch(wrong.url, { method: 'HEAD', headers: { ...TUS, ...headers } })).status).toBe(410);
    // Nothing of it is left in S3 to become an object.
    expect((await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((u) => u.key)).not.toContain(wrong.id);
    expect((await fetch(wrong.url, { headers })).status).toBe(410);

    const badForm = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, ...headers, 'Upload-Length': '5', ...metadataSha256('nope') },
    });
    expect(badForm.status).toBe(400);
  });
});

describe('UPLOAD_SHA256=false', () => {
  test('no digest is kept, unless the client announced one: that one is still checked', async () => {
    const plain = await startFreight(serviceEnv(ctx.bucket.bucket, { S3_PART_SIZE: '5MiB', UPLOAD_SHA256: 'false' }));
    try {
      const headers = await auth(uniqueUser('nohash'));
      const data = randomData(7 * MiB);
      const quiet = await createRawUpload(plain.url, headers, data);
      expect((await quiet.patch(0, data.length)).status).toBe(204);
      expect(await row(quiet.id)).toMatchObject({ status: 'completed', sha256: null });

      const wrong = sha256(Buffer.from('not it'));
      const announced = await createRawUpload(plain.url, headers, data, {
        'Upload-Length': String(data.length),
        ...metadataSha256(wrong),
      });
      expect((await announced.patch(0, data.length)).status).toBe(460);
      expect((await row(announced.id))?.status).toBe('rejected');
    } finally {
      await plain.close();
    }
  });
});

describe('staged bytes lost in S3', () => {
  test('the offset and the digest go back to the start of their part; the resumed upload is exact', async () => {
    const headers = await auth(uniqueUser('rewind'));
    const data = randomData(13 * MiB + 11);
    const upload = await createRawUpload(ctx.freight.url, headers, data);
    // Part 1 whole, then 2 MiB staged as a tail object of part 2.
    expect((await upload.patch(0, 7 * MiB)).status).toBe(204);
    const [{ staging }] = (await ctx.sql`select staging from file_uploads where id = ${upload.id}`) as unknown as [
      { staging: { tail: { key: string } } },
    ];
    // A bucket lifecycle rule or an operator removes it behind Freight's back.
    await ctx.s3.send(new DeleteObjectCommand({ Bucket: ctx.bucket.bucket, Key: staging.tail.key }));

    const next = await upload.patch(7 * MiB, data.length);
    expect(next.status).toBe(409);
    expect(await errorCodeOf(next)).toBe('ERR_UPLOAD_CONFLICT');
    const head = await fetch(upload.url, { method: 'HEAD', headers: { ...TUS, ...headers } });
    expect(head.headers.get('upload-offset')).toBe(String(5 * MiB));
    expect((await upload.patch(5 * MiB, data.length)).status).toBe(204);
    const stored = await sha256OfObject(ctx.s3, ctx.bucket.bucket, upload.id);
    expect(stored).toBe(sha256(data));
    expect((await row(upload.id))?.sha256).toBe(stored);
  });
});

describe('the SHA-256 survives crashes and instance changes', () => {
  let dataDir: string;
  let a: ServerProcess;
  let b: ServerProcess;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'freight-integrity-'));
    const env = serviceEnv(ctx.bucket.bucket, { DATA_DIR: dataDir, S3_PART_SIZE: '5MiB', LOG_LEVEL: 'warn' });
    [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await rm(dataDir, { recursive: true, force: true });
  });

  test('kill -9 at three points, resumed once on the other instance: the recorded digest is the object’s', async () => {
    const user = uniqueUser('crash-digest');
    const token = await tokenFor(user);
    const data = randomData(96 * MiB + 999);
    const created = await fetch(`${a.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, Authorization: `Bearer ${token}`, 'Upload-Length': String(data.length) },
    });
    const pathname = new URL(created.headers.get('location')!).pathname;
    const id = pathname.split('/').pop()!;
    // Crash points, and where to resume after each: the same instance twice, the other one once.
    const plan: Array<{ killAt: number; resumeOn: 'same' | 'other' }> = [
      { killAt: 20 * MiB, resumeOn: 'same' },
      { killAt: 45 * MiB, resumeOn: 'other' },
      { killAt: 70 * MiB, resumeOn: 'same' },
    ];
    let serving = a;
    const outcomes: string[] = [];
    for (const step of [...plan, undefined]) {
      const run = startTusUpload(data, {
        uploadUrl: `${serving.url}${pathname}`,
        headers: { Authorization: `Bearer ${token}` },
        chunkSize: 7 * MiB + 3,
      });
      const victim = serving;
      let killed: Promise<void> | undefined;
      if (step) {
        run.upload.options.onProgress = (sent) => {
          if (sent >= step.killAt && !killed) killed = victim.kill('SIGKILL');
        };
      }
      const outcome = await run.done.then(
        () => 'done',
        () => 'cut',
      );
      outcomes.push(outcome);
      if (!step) break;
      await killed;
      await victim.restart();
      if (step.resumeOn === 'other') serving = serving === a ? b : a;
    }
    expect(outcomes).toEqual(['cut', 'cut', 'cut', 'done']);
    const stored = await sha256OfObject(ctx.s3, ctx.bucket.bucket, id);
    expect(stored).toBe(sha256(data));
    expect(await row(id)).toMatchObject({ status: 'completed', sha256: stored });
  });
});
