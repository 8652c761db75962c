/**
 * Expiry measures idleness, not age: an upload that makes progress never expires, whatever its age; one a writer
 * holds never expires under it; an idle one still does; and nothing completed is ever expired or left in the
 * bucket. Against real PostgreSQL (its advisory locks) and S3, and on the embedded defaults (PGlite, the file
 * store, the in-memory locker).
 *
 * The servers run with an UPLOAD_EXPIRY of 2 s and a clock the tests move (the janitor's and the upload
 * service's), so "ten times the expiry" takes no waiting; one test runs in real time with tus-js-client over a
 * slow link instead. The janitor acts on every upload of its database, so the S3 tests have a database of their own.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { openJanitorDeps } from '../../src/janitor/wiring.js';
import { runJanitor } from '../../src/janitor/janitor.js';
import {
  MiB,
  createTestBucket,
  eventually,
  isolatedDatabase,
  listMultipartUploads,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  silentLogger,
  startFreight,
  testS3Client,
  tokenFor,
  type RunningFreight,
} from '../helpers/harness.js';
import { holdingProxy, type HoldingProxy } from '../helpers/proxy.js';
import { throttlingProxy } from '../helpers/throttle.js';
import { createRawUpload, pausingPatch, startTusUpload, uploadIdOf } from '../helpers/tus-client.js';

const EXPIRY_MS = 2_000;
/** How long a direct completion's claim keeps the janitor away (src/direct/service.ts). */
const CLAIM_MS = 5 * 60_000;
/** PRESIGN_EXPIRES of the direct tests: a signed part keeps its upload at least this long. */
const PRESIGN_MS = 60_000;

/**
 * The servers' clock: stopped (so that however slow the machine, only the tests move it), or the system's while a
 * test runs in real time; always moved forward by `shiftMs`.
 */
let shiftMs = 0;
let frozenAt: number | undefined = Date.now();
const now = () => new Date((frozenAt ?? Date.now()) + shiftMs);
const shortExpiry = (config: Config): Config => ({ ...config, uploadExpiryMs: EXPIRY_MS });

const auth = async () => ({ Authorization: `Bearer ${await tokenFor('idle-test')}` });
const expiresHeader = (res: Response) => Date.parse(res.headers.get('upload-expires') ?? '');

describe('on S3 and PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof isolatedDatabase>>;
  let s3: S3Client;
  let bucket: Awaited<ReturnType<typeof createTestBucket>>;
  let freight: RunningFreight;
  let sql: postgres.Sql;

  beforeAll(async () => {
    database = await isolatedDatabase('freight_expiry');
    s3 = testS3Client();
    bucket = await createTestBucket(s3, 'freight-expiry');
    freight = await startFreight(
      serviceEnv(bucket.bucket, { DATABASE_URL: database.url, JANITOR_INTERVAL: '0' }),
      { now },
      shortExpiry,
    );
    sql = postgres(database.url, { max: 2, onnotice: () => {} });
  });
  afterAll(async () => {
    await freight?.close();
    await sql?.end();
    await bucket?.drop();
    s3?.destroy();
    await database?.drop();
  });

  const rowOf = async (id: string) =>
    (
      await sql<{ status: string; stored_offset: string | null; locked_until: Date | null }[]>`
      select status, stored_offset, locked_until from file_uploads where id = ${id}`
    )[0];
  const objectExists = (key: string) =>
    s3.send(new HeadObjectCommand({ Bucket: bucket.bucket, Key: key })).then(
      () => true,
      () => false,
    );

  test('an upload PATCHed every 0.9 × UPLOAD_EXPIRY completes after ten times UPLOAD_EXPIRY, the janitor running between PATCHes; the idle one beside it expires', async () => {
    const headers = await auth();
    const data = randomData(10 * MiB);
    const upload = await createRawUpload(freight.url, headers, data);
    const idle = await createRawUpload(freight.url, headers, randomData(MiB));
    const expiredAt: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await upload.patch(i * MiB, (i + 1) * MiB);
      expect(res.status).toBe(204);
      // Upload-Expires says UPLOAD_EXPIRY after this progress (the header has whole seconds); a completed upload
      // has none.
      if (i < 9) expect(Math.abs(expiresHeader(res) - (now().getTime() + EXPIRY_MS))).toBeLessThan(1_000);
      else expect(res.headers.get('upload-expires')).toBeNull();
      shiftMs += 0.9 * EXPIRY_MS;
      const report = await freight.app.janitor.run();
      if (report.expired.tus > 0) expiredAt.push(i);
      expect(
        report.actions.filter((action) => action.kind === 'expire-upload' && action.uploadId === upload.id),
      ).toEqual([]);
    }
    // 9 × UPLOAD_EXPIRY after its creation, the upload is complete and in the bucket.
    expect(await rowOf(upload.id)).toMatchObject({ status: 'completed', stored_offset: String(data.length) });
    expect(await sha256OfObject(s3, bucket.bucket, upload.id)).toBe(sha256(data));
    // The idle one expired at the first run past its expiry (1.8 × UPLOAD_EXPIRY), and is gone.
    expect(expiredAt).toEqual([1]);
    expect((await rowOf(idle.id))?.status).toBe('expired');
    expect((await fetch(idle.url, { method: 'HEAD', headers: { ...headers, 'Tus-Resumable': '1.0.0' } })).status).toBe(
      410,
    );
  });

  test('a PATCH whose body is held back is not expired by the janitor, however far past its expiry; it then completes', async () => {
    const headers = await auth();
    const data = randomData(12 * MiB);
    const upload = await createRawUpload(freight.url, headers, data);
    const pieces = [data.subarray(0, 9 * MiB), data.subarray(9 * MiB)];
    const answer = await pausingPatch(upload.url, headers, 0, pieces, async (index) => {
      if (index > 0) return;
      // Part 1 (8 MiB) is stored; the writer holds the upload's lock while the rest of its body is held back.
      await eventually(async () => ((await rowOf(upload.id))?.stored_offset === String(8 * MiB) ? true : undefined));
      shiftMs += 10 * EXPIRY_MS;
      for (let run = 0; run < 3; run++) expect((await freight.app.janitor.run()).expired.tus).toBe(0);
      expect((await rowOf(upload.id))?.status).toBe('uploading');
    });
    expect(answer).toMatchObject({ status: 204, offset: data.length });
    expect(await rowOf(upload.id)).toMatchObject({ status: 'completed', stored_offset: String(data.length) });
    expect(await sha256OfObject(s3, bucket.bucket, upload.id)).toBe(sha256(data));
  });

  test('tus-js-client over a slow link uploads for four times UPLOAD_EXPIRY (real time) while the janitor runs again and again', async () => {
    frozenAt = undefined;
    onTestFinished(() => {
      frozenAt = Date.now();
    });
    const link = await throttlingProxy(freight.url);
    link.rate = 512 * 1024;
    const data = randomData(4 * MiB);
    let finished = false;
    let janitorRuns = 0;
    const janitor = (async () => {
      while (!finished) {
        expect((await freight.app.janitor.run()).expired.tus).toBe(0);
        janitorRuns++;
      }
    })();
    try {
      const started = performance.now();
      const run = startTusUpload(data, {
        endpoint: `${link.url}/files/`,
        headers: await auth(),
        chunkSize: MiB,
        metadata: { filename: 'slow.bin' },
      });
      const url = await run.done;
      const seconds = (performance.now() - started) / 1000;
      expect(seconds).toBeGreaterThan((4 * EXPIRY_MS) / 1000);
      expect((await rowOf(uploadIdOf(url)))?.status).toBe('completed');
      expect(await sha256OfObject(s3, bucket.bucket, uploadIdOf(url))).toBe(sha256(data));
    } finally {
      finished = true;
      await janitor;
      await link.close();
    }
    expect(janitorRuns).toBeGreaterThan(2);
  });

  describe('a direct completion racing the expiry', () => {
    let proxy: HoldingProxy;
    let held: RunningFreight;

    beforeAll(async () => {
      proxy = await holdingProxy(freight.config.s3!.endpoint!);
      held = await startFreight(
        serviceEnv(bucket.bucket, {
          DATABASE_URL: database.url,
          JANITOR_INTERVAL: '0',
          S3_ENDPOINT: proxy.url,
          PRESIGN_EXPIRES: `${PRESIGN_MS / 1000}s`,
        }),
        { now },
        shortExpiry,
      );
    });
    afterAll(async () => {
      await proxy?.release();
      await held?.close();
      await proxy?.down();
    });

    /** A direct upload of one part, sent and listed; its completion is sent while S3 is held, and claimed. */
    async function completionHeldInS3(): Promise<{ id: string; answer: Promise<Response> }> {
      const headers = { ...(await auth()), 'Content-Type': 'application/json' };
      const created = (await (
        await fetch(`${held.url}/api/multipart`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ filename: 'race.bin', size: MiB }),
        })
      ).json()) as { id: string; parts: Array<{ url: string }> };
      const put = await fetch(created.parts[0]!.url, { method: 'PUT', body: randomData(MiB) });
      expect(put.status).toBe(200);
      expect((await fetch(`${held.url}/api/multipart/${created.id}/parts`, { headers })).status).toBe(200);
      await proxy.hold();
      const answer = fetch(`${held.url}/api/multipart/${created.id}/complete`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ parts: [{ partNumber: 1, etag: put.headers.get('etag') }] }),
      });
      // Claimed; its first S3 call (listing the parts) waits in the held proxy.
      await eventually(async () => ((await rowOf(created.id))?.locked_until ? true : undefined));
      return { id: created.id, answer };
    }

    /** A janitor beside the server, on the same database, reaching S3 directly (not through the held proxy). */
    async function janitorAt(clock: () => Date) {
      return openJanitorDeps(shortExpiry(freight.config), silentLogger(), clock);
    }

    test('while its claim lasts, the janitor leaves it alone, past its expiry: the completion wins', async () => {
      const { id, answer } = await completionHeldInS3();
      // Past its expiry (and the signed URL's life), not past the claim.
      const janitor = await janitorAt(() => new Date(now().getTime() + PRESIGN_MS + 2 * EXPIRY_MS));
      try {
        const report = await runJanitor(janitor.deps);
        expect(report.expired).toEqual({ tus: 0, direct: 0 });
      } finally {
        await janitor.close();
      }
      await proxy.release();
      expect((await answer).status).toBe(200);
      expect((await rowOf(id))?.status).toBe('completed');
      expect(await objectExists(id)).toBe(true);
    });

    test('once its claim ran out, a janitor run expires it and aborts its multipart upload: 410, nothing in the bucket', async () => {
      const { id, answer } = await completionHeldInS3();
      const janitor = await janitorAt(() => new Date(now().getTime() + CLAIM_MS + 2 * EXPIRY_MS));
      try {
        expect((await runJanitor(janitor.deps)).expired.direct).toBe(1);
      } finally {
        await janitor.close();
      }
      await proxy.release();
      expect((await answer).status).toBe(410);
      expect((await rowOf(id))?.status).toBe('expired');
      expect(await objectExists(id)).toBe(false);
      expect((await listMultipartUploads(s3, bucket.bucket)).filter((upload) => upload.key === id)).toEqual([]);
    });

    test('expired between S3 assembling it and its status update (the abort too late): the object is removed, 410', async () => {
      const { id, answer } = await completionHeldInS3();
      // Only the expiry's decision lands while S3 is held; the janitor's abort of the multipart upload comes after
      // S3 assembled the object, as when it lost the race to CompleteMultipartUpload.
      const janitor = await janitorAt(() => new Date(now().getTime() + CLAIM_MS + 2 * EXPIRY_MS));
      try {
        expect((await janitor.deps.uploads.states.expireIdle([id])).map((upload) => upload.status)).toEqual([
          'expired',
        ]);
        await proxy.release();
        const res = await answer;
        expect(res.status).toBe(410);
        expect(await res.text()).toMatch(/expired while it was being completed; its object was removed/);
        expect(await objectExists(id)).toBe(false);
        const report = await runJanitor(janitor.deps);
        expect(report.failures).toBe(0);
      } finally {
        await janitor.close();
      }
      expect((await rowOf(id))?.status).toBe('expired');
      expect(await objectExists(id)).toBe(false);
      expect((await listMultipartUploads(s3, bucket.bucket)).filter((upload) => upload.key === id)).toEqual([]);
    });
  });
});

describe('on the embedded defaults (PGlite, file store, in-memory locks)', () => {
  let freight: RunningFreight;

  beforeAll(async () => {
    freight = await startFreight(
      { AUTH_JWT_SECRET: 'freight-test-secret-0123456789abcdef', LOG_LEVEL: 'silent' },
      { now },
      shortExpiry,
    );
  });
  afterAll(async () => {
    await freight?.close();
  });

  const statusOf = async (id: string) => {
    const res = await fetch(`${freight.url}/api/uploads/${id}`, { headers: await auth() });
    return ((await res.json()) as { status: string }).status;
  };

  test('a PATCH whose body is held back is not expired by the janitor; the idle upload beside it is', async () => {
    const headers = await auth();
    const data = randomData(6 * MiB);
    const upload = await createRawUpload(freight.url, headers, data);
    const idle = await createRawUpload(freight.url, headers, randomData(MiB));
    const file = path.join(freight.dataDir, 'files', upload.id);
    const pieces = [data.subarray(0, 4 * MiB), data.subarray(4 * MiB)];
    const answer = await pausingPatch(upload.url, headers, 0, pieces, async (index) => {
      if (index > 0) return;
      // The file store writes as bytes arrive and records the offset when the body ends: the PATCH is under way.
      await eventually(async () => ((await stat(file)).size === 4 * MiB ? true : undefined));
      shiftMs += 10 * EXPIRY_MS;
      const report = await freight.app.janitor.run();
      expect(report.actions).toEqual([{ kind: 'expire-upload', uploadId: idle.id, protocol: 'tus' }]);
    });
    expect(answer, answer.text).toMatchObject({ status: 204, offset: data.length });
    expect(await statusOf(upload.id)).toBe('completed');
    expect(await statusOf(idle.id)).toBe('expired');
  });
});
