/**
 * No part slot is held while a client's bytes are awaited, and no request waits for one past its client or past
 * another request that wants its upload (src/tus/s3/slots.ts, writer.ts). Freight on the test S3 gateway and
 * PostgreSQL; slow clients are real TCP connections slowed by a relay (test/helpers/throttle.ts), S3 stalls are
 * a relay in front of the gateway that stops forwarding (test/helpers/proxy.ts).
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import {
  createTestBucket,
  eventually,
  freightOnS3,
  MiB,
  outageProxy,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  startFreight,
  testS3Client,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../../helpers/harness.js';
import { scrape } from '../../helpers/metrics.js';
import type { HoldingProxy } from '../../helpers/proxy.js';
import { throttlingProxy, type ThrottlingProxy } from '../../helpers/throttle.js';
import { createRawUpload, pausingPatch, stalledPatch, startTusUpload, uploadIdOf } from '../../helpers/tus-client.js';
import { storedUpload } from './stored-state.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const KiB = 1024;

/** Part-slot gauges of a Freight (GET /metrics). */
async function slotsOf(url: string): Promise<{ inUse: number; waiting: number; tempBytes: number }> {
  const metrics = await scrape(url);
  return {
    inUse: metrics('freight_part_slots_in_use'),
    waiting: metrics('freight_part_slots_waiting'),
    tempBytes: metrics('freight_temp_bytes_buffered'),
  };
}

/**
 * A PATCH at offset 0 of a deferred-length upload announcing `length` bytes and writing them as fast as its link
 * lets it (the relay slows it): a client on a crawling link. `stop()` drops the connection.
 */
function crawlingPatch(url: string, token: string, length: number): { stop(): void } {
  const request = http.request(url, {
    method: 'PATCH',
    headers: {
      ...TUS,
      Authorization: `Bearer ${token}`,
      'Upload-Offset': '0',
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(length),
    },
  });
  request.on('error', () => {});
  let stopped = false;
  const chunk = randomData(64 * KiB);
  void (async () => {
    for (let sent = 0; sent < length && !stopped; sent += chunk.length) {
      if (!request.write(chunk)) await new Promise((drained) => request.once('drain', drained));
    }
  })();
  return {
    stop: () => {
      stopped = true;
      request.destroy();
    },
  };
}

describe('two deferred-length clients crawling at 48 KiB/s with S3_PART_CONCURRENCY=2', () => {
  const ctx = freightOnS3('freight-slot-crawl', { S3_PART_CONCURRENCY: '2' });
  const relays: ThrottlingProxy[] = [];
  afterAll(async () => {
    await Promise.all(relays.map((relay) => relay.close()));
  });

  test('hold no slot while their bytes trickle in, and another user’s 8 MiB upload by tus-js-client finishes within 10 s', async () => {
    const crawlers = await Promise.all(
      [1, 2].map(async (n) => {
        const token = await tokenFor(uniqueUser(`crawler-${n}`));
        const created = await fetch(`${ctx.freight.url}/files/`, {
          method: 'POST',
          headers: { ...TUS, Authorization: `Bearer ${token}`, 'Upload-Defer-Length': '1' },
        });
        expect(created.status).toBe(201);
        const id = uploadIdOf(created.headers.get('location')!);
        // Above UPLOAD_MIN_RATE (16 KiB/s): the stall rule never ends these bodies.
        const relay = await throttlingProxy(ctx.freight.url);
        relays.push(relay);
        relay.rate = 48 * KiB;
        return { id, relay, patch: crawlingPatch(`${relay.url}/files/${id}`, token, 256 * MiB) };
      }),
    );
    try {
      // Each crawler has sent more than 256 KiB (what used to take a slot, held until its 524 MiB part was full).
      await eventually(async () => (crawlers.every(({ relay }) => relay.sent > 320 * KiB) ? true : undefined), 30_000);
      const data = randomData(8 * MiB);
      const started = performance.now();
      const normal = startTusUpload(data, {
        endpoint: `${ctx.freight.url}/files/`,
        headers: { Authorization: `Bearer ${await tokenFor(uniqueUser('sender'))}` },
      });
      const finished = await Promise.race([
        normal.done,
        new Promise<undefined>((resolve) => setTimeout(resolve, 10_000, undefined)),
      ]);
      const tookMs = performance.now() - started;
      console.info(`[slot-waits] 8 MiB beside two crawlers: ${Math.round(tookMs)} ms`);
      if (!finished) await normal.upload.abort();
      expect(finished, 'the 8 MiB upload did not finish within 10 s').toBeDefined();
      expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, uploadIdOf(finished!))).toBe(sha256(data));
      // The crawlers, still crawling, hold no slot; their bytes wait on temp disk.
      const whileCrawling = await slotsOf(ctx.freight.url);
      expect(whileCrawling.inUse).toBe(0);
      expect(whileCrawling.tempBytes).toBeGreaterThanOrEqual(2 * 256 * KiB);
      // Deferred length: the plan is MAX_UPLOAD_SIZE's (5 TiB), parts of ~524 MiB.
      expect((await storedUpload(ctx.sql, crawlers[0]!.id)).partSize).toBeGreaterThan(500 * MiB);
    } finally {
      for (const { patch } of crawlers) patch.stop();
    }
  });
});

describe('a request waiting for a part slot (S3_PART_CONCURRENCY=1, the slot held by a send S3 does not answer)', () => {
  let s3: ReturnType<typeof testS3Client>;
  let bucket: Awaited<ReturnType<typeof createTestBucket>>;
  let relay: HoldingProxy;
  let freight: RunningFreight;
  beforeAll(async () => {
    s3 = testS3Client();
    bucket = await createTestBucket(s3, 'freight-slot-wait');
    relay = await outageProxy(inject('s3').endpoint);
    // LOCK_TIMEOUT 1 s: a request that cannot get the upload's lock is answered 423 after 1 s.
    freight = await startFreight(
      serviceEnv(bucket.bucket, { S3_ENDPOINT: relay.url, S3_PART_CONCURRENCY: '1', LOCK_TIMEOUT: '1s' }),
    );
  });
  afterAll(async () => {
    await relay?.up();
    await freight?.close();
    await relay?.down();
    await bucket?.drop();
    s3?.destroy();
  });

  test.each(['its client disconnects', 'another request for its upload arrives'])(
    'leaves the queue when %s: the upload’s next PATCH is not 423, and tus-js-client then finishes it byte-identical',
    async (ending) => {
      const userA = { Authorization: `Bearer ${await tokenFor(uniqueUser('holder'))}` };
      const a = randomData(16 * MiB);
      const holder = await createRawUpload(freight.url, userA, a);
      expect((await holder.patch(0, 8 * MiB)).status).toBe(204);
      // S3 stops answering while A's second part is on its way: A's send holds the only slot.
      await relay.hold();
      const held = holder.patch(8 * MiB, 16 * MiB);
      await eventually(async () => ((await slotsOf(freight.url)).inUse === 1 ? true : undefined));

      const tokenB = await tokenFor(uniqueUser('waiter'));
      const userB = { Authorization: `Bearer ${tokenB}` };
      const b = randomData(3 * MiB);
      const waiter = await createRawUpload(freight.url, userB, b);
      // 1 MiB, all of it sent: B's request holds B's lock and waits for a slot to store it.
      const first = stalledPatch(waiter.url, userB, b.subarray(0, MiB), 0, MiB);
      await eventually(async () => ((await slotsOf(freight.url)).waiting === 1 ? true : undefined));

      if (ending === 'its client disconnects') {
        first.cut();
        await eventually(async () => ((await slotsOf(freight.url)).waiting === 0 ? true : undefined), 10_000);
      }
      // The client (or another) at the offset HEAD gives: B's lock is free (or freed by asking), not 423.
      const head = await fetch(waiter.url, { method: 'HEAD', headers: { ...TUS, ...userB } });
      expect(head.headers.get('upload-offset')).toBe('0');
      const next = await fetch(waiter.url, {
        method: 'PATCH',
        headers: { ...TUS, ...userB, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: new Uint8Array(0),
      });
      expect(next.status).toBe(204);
      expect(next.headers.get('upload-offset')).toBe('0');
      expect((await slotsOf(freight.url)).waiting).toBe(0);
      first.cut();

      // S3 answers again: A's part goes through, and B's upload is finished by tus-js-client.
      await relay.release();
      expect((await held).status).toBe(204);
      const run = startTusUpload(b, { uploadUrl: waiter.url, headers: userB, retryDelays: [0, 200, 500] });
      await run.done;
      expect(await sha256OfObject(s3, bucket.bucket, waiter.id)).toBe(sha256(b));
    },
  );
});

describe('a deferred-length upload with parts larger than a segment (64 MiB parts: MAX_UPLOAD_SIZE=1GiB, S3_MAX_PARTS=16)', () => {
  const ctx = freightOnS3('freight-slot-segments', { MAX_UPLOAD_SIZE: '1GiB', S3_MAX_PARTS: '16' });

  test('each 16 MiB of a PATCH is stored as a segment while the client is still sending (no slot, one segment of disk), and the upload completes byte-identical', async () => {
    const token = await tokenFor(uniqueUser('segments'));
    const auth = { Authorization: `Bearer ${token}` };
    const created = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, ...auth, 'Upload-Defer-Length': '1' },
    });
    const url = created.headers.get('location')!;
    const id = uploadIdOf(url);
    expect((await storedUpload(ctx.sql, id)).partSize).toBe(64 * MiB);
    const data = randomData(100 * MiB + 3);

    // 40 MiB in one PATCH whose client pauses after 17 MiB: by then its first 16 MiB are stored (a segment of
    // part 1's staging upload), though part 1 is far from full, and nothing holds a slot while it pauses.
    const paused = { inUse: -1, tempBytes: -1 };
    const answer = await pausingPatch(
      url,
      auth,
      0,
      [data.subarray(0, 17 * MiB), data.subarray(17 * MiB, 40 * MiB)],
      async (index) => {
        if (index !== 0) return;
        await eventually(async () => ((await storedUpload(ctx.sql, id)).storedOffset === 16 * MiB ? true : undefined));
        Object.assign(paused, await slotsOf(ctx.freight.url));
      },
    );
    expect(answer, answer.text).toMatchObject({ status: 204, offset: 40 * MiB });
    expect(paused.inUse).toBe(0);
    expect(paused.tempBytes).toBeLessThanOrEqual(16 * MiB);
    const staged = await storedUpload(ctx.sql, id);
    expect(staged.staging?.segments.map((segment) => segment.size)).toEqual([16 * MiB, 16 * MiB, 8 * MiB]);

    // The rest, its length declared with it: part 1 joined from four segments inside S3, part 2 the last.
    const last = await fetch(url, {
      method: 'PATCH',
      headers: {
        ...TUS,
        ...auth,
        'Upload-Offset': String(40 * MiB),
        'Upload-Length': String(data.length),
        'Content-Type': 'application/offset+octet-stream',
      },
      body: data.subarray(40 * MiB),
    });
    expect(last.status).toBe(204);
    const done = await storedUpload(ctx.sql, id);
    expect(done.status).toBe('completed');
    expect(done.parts.map((part) => part.size)).toEqual([64 * MiB, data.length - 64 * MiB]);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(data));
    const [row] = await ctx.sql`select sha256 from file_uploads where id = ${id}`;
    expect(row?.sha256).toBe(sha256(data));
  });
});
