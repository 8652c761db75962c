/**
 * Any PATCH size reaches the end of an upload: every upload's part size is planned at creation
 * (max(S3_PART_SIZE, ceil(length / S3_MAX_PARTS)), a deferred length planned as MAX_UPLOAD_SIZE), every part but
 * the last is exactly that size whatever the PATCHes are, so an upload never needs more than S3_MAX_PARTS parts.
 * Small S3_MAX_PARTS make the plan visible with tens of MiB. Real tus clients and raw PATCHes against Freight on
 * the test S3 gateway and PostgreSQL; the gateway is reached through a relay that counts the bytes Freight sends.
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import {
  createTestBucket,
  eventually,
  MiB,
  outageProxy,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  startFreight,
  testS3Client,
  testSql,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../../helpers/harness.js';
import type { HoldingProxy } from '../../helpers/proxy.js';
import { pausingPatch, startTusUpload, uploadIdOf } from '../../helpers/tus-client.js';
import { expectStoredUpTo, leftoversOf, stagedShape, storedUpload } from './stored-state.js';

let s3: S3Client;
let bucket: Awaited<ReturnType<typeof createTestBucket>>;
let sql: ReturnType<typeof testSql>;
/** Between every Freight of this file and the gateway: counts what Freight sends to S3. */
let relay: HoldingProxy;

beforeAll(async () => {
  s3 = testS3Client();
  bucket = await createTestBucket(s3, 'freight-planning');
  sql = testSql();
  relay = await outageProxy(inject('s3').endpoint);
});
afterAll(async () => {
  await relay?.down();
  await sql?.end();
  await bucket?.drop();
  s3?.destroy();
});

/** A Freight on this file's bucket, through the counting relay, for the tests of one describe. */
function freightWith(env: Record<string, string>): () => RunningFreight {
  let freight: RunningFreight | undefined;
  beforeAll(async () => {
    freight = await startFreight(serviceEnv(bucket.bucket, { S3_ENDPOINT: relay.url, S3_PART_SIZE: '5MiB', ...env }));
  });
  afterAll(async () => {
    await freight?.close();
  });
  return () => {
    if (!freight) throw new Error('Freight is not started');
    return freight;
  };
}

/** Raw tus requests of one user. */
async function tusAs(freight: () => RunningFreight) {
  const token = await tokenFor(uniqueUser('planning'));
  const headers = { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}` };
  return {
    token,
    headers,
    async create(uploadHeaders: Record<string, string>): Promise<{ url: string; id: string }> {
      const created = await fetch(`${freight().url}/files/`, {
        method: 'POST',
        headers: { ...headers, ...uploadHeaders },
      });
      expect(created.status).toBe(201);
      const url = created.headers.get('location')!;
      return { url, id: uploadIdOf(url) };
    },
    /** A PATCH of `body` at `offset`; it must be answered 204 with the offset after it. */
    async patch(
      url: string,
      offset: number,
      body: Buffer<ArrayBuffer>,
      extra: Record<string, string> = {},
    ): Promise<number> {
      const res = await fetch(url, {
        method: 'PATCH',
        headers: {
          ...headers,
          ...extra,
          'Upload-Offset': String(offset),
          'Content-Type': 'application/offset+octet-stream',
        },
        body,
      });
      expect(res.status, await res.clone().text()).toBe(204);
      return Number(res.headers.get('upload-offset'));
    },
    async headOffset(url: string): Promise<number> {
      const res = await fetch(url, { method: 'HEAD', headers });
      expect(res.status).toBe(200);
      return Number(res.headers.get('upload-offset'));
    },
  };
}

/** The number of parts S3 assembled an object from: the "-N" of its multipart ETag. */
async function assembledPartCount(id: string): Promise<number> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket.bucket, Key: id }));
  const match = /-(\d+)"?$/.exec(head.ETag ?? '');
  if (!match) throw new Error(`the object ${id} has no multipart ETag: ${head.ETag}`);
  return Number(match[1]);
}

/** The completed upload: byte-identical, assembled from its recorded parts, nothing left open or staged in S3. */
async function expectCompleted(id: string, data: Buffer, partSize: number): Promise<void> {
  expect(await sha256OfObject(s3, bucket.bucket, id)).toBe(sha256(data));
  const upload = await expectStoredUpTo(sql, s3, bucket.bucket, id, data.length);
  expect(upload).toMatchObject({ status: 'completed', totalSize: data.length, partSize, staging: null });
  expect(upload.parts).toHaveLength(Math.ceil(data.length / partSize));
  expect(await assembledPartCount(id)).toBe(upload.parts.length);
  expect(
    await eventually(async () => {
      const left = await leftoversOf(s3, bucket.bucket, id);
      return left.objects.length === 0 && left.openUploads.length === 0 ? left : undefined;
    }),
  ).toEqual({ objects: [], openUploads: [] });
}

const expectedPartSize = (planLength: number, maxParts: number) => Math.max(5 * MiB, Math.ceil(planLength / maxParts));

describe('S3_MAX_PARTS=12, MAX_UPLOAD_SIZE=200MiB', () => {
  const MAX_PARTS = 12;
  const freight = freightWith({ S3_MAX_PARTS: String(MAX_PARTS), MAX_UPLOAD_SIZE: '200MiB' });

  test('a 120 MiB upload sent by tus-js-client in 5 MiB PATCHes is stored as 12 parts of 10 MiB, byte-identical, its bytes sent to S3 once', async () => {
    const data = randomData(120 * MiB);
    const partSize = expectedPartSize(data.length, MAX_PARTS);
    expect(partSize).toBe(10 * MiB);
    const toS3Before = relay.relayed.toTarget;
    const run = startTusUpload(data, {
      endpoint: `${freight().url}/files/`,
      headers: { Authorization: `Bearer ${await tokenFor(uniqueUser('planning'))}` },
      chunkSize: 5 * MiB,
    });
    const id = uploadIdOf(await run.done);
    const sentToS3 = relay.relayed.toTarget - toS3Before;

    const patches = run.requests.filter((request) => request.method === 'PATCH');
    expect(patches.map((patch) => Number(patch.uploadOffset))).toEqual(
      Array.from({ length: 24 }, (_, i) => i * 5 * MiB),
    );
    await expectCompleted(id, data, partSize);
    expect((await storedUpload(sql, id)).parts).toHaveLength(MAX_PARTS);
    // Every other PATCH ends half-way through a part: its 5 MiB are staged in S3 and joined inside S3 when the
    // next PATCH fills the part. What crosses the link to S3 is the upload once, plus request overhead.
    console.info(`[planning] 120 MiB in 5 MiB PATCHes: ${(sentToS3 / MiB).toFixed(2)} MiB sent to S3`);
    expect(sentToS3).toBeGreaterThanOrEqual(data.length);
    expect(sentToS3).toBeLessThan(data.length * 1.02);
  });

  test('a deferred-length upload sent in odd PATCHes, its length declared with the last one, has parts of ceil(200 MiB / 12)', async () => {
    const tus = await tusAs(freight);
    const sizes = [3, 7 * MiB + 5, 13 * MiB, 1, 9 * MiB - 7, 6 * MiB + 123];
    const data = randomData(sizes.reduce((a, b) => a + b, 0));
    const { url, id } = await tus.create({ 'Upload-Defer-Length': '1' });
    const partSize = expectedPartSize(200 * MiB, MAX_PARTS);
    expect((await storedUpload(sql, id)).partSize).toBe(partSize);

    let offset = 0;
    for (const [index, size] of sizes.entries()) {
      const last = index === sizes.length - 1;
      const answered = await tus.patch(
        url,
        offset,
        data.subarray(offset, offset + size),
        last ? { 'Upload-Length': String(data.length) } : {},
      );
      offset += size;
      expect(answered).toBe(offset);
      expect(await tus.headOffset(url)).toBe(offset);
      await expectStoredUpTo(sql, s3, bucket.bucket, id, offset);
    }
    await expectCompleted(id, data, partSize);
    expect((await storedUpload(sql, id)).parts.length).toBeLessThanOrEqual(MAX_PARTS);
  });

  const staged = [
    { shape: 'a tail', sizes: [3 * MiB + 1] },
    { shape: 'a segment', sizes: [6 * MiB] },
    // A whole part first, then its successor's start as a segment and a tail.
    {
      shape: 'a segment and a tail, after a whole part',
      sizes: [expectedPartSize(200 * MiB, MAX_PARTS) + 5 * MiB + 3, MiB + 7],
    },
  ];
  test.each(staged)(
    'a deferred-length upload whose length is declared by an empty PATCH while $shape is staged: the staged bytes become its last part',
    async ({ sizes }) => {
      const tus = await tusAs(freight);
      const data = randomData(sizes.reduce((a, b) => a + b, 0));
      const { url, id } = await tus.create({ 'Upload-Defer-Length': '1' });
      const partSize = expectedPartSize(200 * MiB, MAX_PARTS);
      let offset = 0;
      for (const size of sizes) {
        offset = await tus.patch(url, offset, data.subarray(offset, offset + size));
      }
      expect(offset).toBe(data.length);
      const before = await expectStoredUpTo(sql, s3, bucket.bucket, id, offset);
      expect(before.staging).not.toBeNull();

      // Nothing new comes: the length is the offset already stored.
      expect(await tus.patch(url, offset, Buffer.alloc(0), { 'Upload-Length': String(offset) })).toBe(offset);
      expect(await tus.headOffset(url)).toBe(offset);
      await expectCompleted(id, data, partSize);
      const { parts } = await storedUpload(sql, id);
      expect(parts.at(-1)?.size).toBe(data.length - (parts.length - 1) * partSize);
    },
  );
});

describe('parts larger than most PATCHes (S3_MAX_PARTS=4)', () => {
  const MAX_PARTS = 4;
  const freight = freightWith({ S3_MAX_PARTS: String(MAX_PARTS), MAX_UPLOAD_SIZE: '1GiB' });

  test('odd PATCHes (1 B, 4 MiB + 1, 17 MiB, 3 B, 5 MiB, 9 MiB − 7, 1 MiB + 1, the rest pausing between parts): after each, the offset is what was sent and S3 holds it as recorded', async () => {
    const tus = await tusAs(freight);
    const data = randomData(60 * MiB + 5);
    const partSize = expectedPartSize(data.length, MAX_PARTS);
    expect(partSize).toBe(15 * MiB + 2);
    const { url, id } = await tus.create({ 'Upload-Length': String(data.length) });
    expect((await storedUpload(sql, id)).partSize).toBe(partSize);

    // Each PATCH and the staged start of the part it ends in: under 5 MiB a tail, from 5 MiB a segment.
    const steps: Array<{ size: number; staged: ReturnType<typeof stagedShape> }> = [
      { size: 1, staged: { partNumber: 1, segments: [], tail: 1 } },
      { size: 4 * MiB + 1, staged: { partNumber: 1, segments: [], tail: 4 * MiB + 2 } },
      // fills part 1 (its staged tail read back and sent with it), 6 MiB of part 2
      { size: 17 * MiB, staged: { partNumber: 2, segments: [6 * MiB], tail: null } },
      { size: 3, staged: { partNumber: 2, segments: [6 * MiB], tail: 3 } },
      { size: 5 * MiB, staged: { partNumber: 2, segments: [6 * MiB, 5 * MiB + 3], tail: null } },
      // fills part 2 (its segments joined inside S3), 5 MiB − 6 of part 3
      { size: 9 * MiB - 7, staged: { partNumber: 3, segments: [], tail: 5 * MiB - 6 } },
      { size: MiB + 1, staged: { partNumber: 3, segments: [6 * MiB - 5], tail: null } },
    ];
    const toS3Before = relay.relayed.toTarget;
    let offset = 0;
    for (const step of steps) {
      expect(await tus.patch(url, offset, data.subarray(offset, offset + step.size))).toBe(offset + step.size);
      offset += step.size;
      expect(await tus.headOffset(url)).toBe(offset);
      const stored = await expectStoredUpTo(sql, s3, bucket.bucket, id, offset);
      expect(stagedShape(stored.staging)).toEqual(step.staged);
    }

    // The rest fills part 3 (whose start is staged as a segment) and then all of part 4. The client's link pauses
    // right after part 3 is full, until Freight has recorded part 3: part 4 is then cut from a body whose first
    // part is already recorded.
    const endOfPart3 = 3 * partSize;
    const answer = await pausingPatch(
      url,
      { Authorization: `Bearer ${tus.token}` },
      offset,
      [data.subarray(offset, endOfPart3), data.subarray(endOfPart3)],
      async (index) => {
        if (index === 0)
          await eventually(async () => ((await storedUpload(sql, id)).storedOffset === endOfPart3 ? true : undefined));
      },
    );
    expect(answer, answer.text).toMatchObject({ status: 204, offset: data.length });
    const sentToS3 = relay.relayed.toTarget - toS3Before;
    console.info(`[planning] 60 MiB in odd PATCHes: ${(sentToS3 / MiB).toFixed(2)} MiB sent to S3`);

    expect(await tus.headOffset(url)).toBe(data.length);
    await expectCompleted(id, data, partSize);
    expect((await storedUpload(sql, id)).parts.map((part) => part.size)).toEqual([
      partSize,
      partSize,
      partSize,
      data.length - 3 * partSize,
    ]);
  });
});
