/**
 * Final uploads (tus concatenation) recover from a failure at each step of their assembly, on PostgreSQL and the
 * S3 gateway, and end in a recorded state when they cannot:
 *
 * - copy path (S3 joins the partials): the database goes away right after S3 answered CompleteMultipartUpload,
 *   before the completion is recorded; or the process is killed (SIGKILL) at that moment. A later attempt finds
 *   no multipart upload but the object at its length, and records the completion (before: every retry reused the
 *   completed multipart upload and met NoSuchUpload, until expiry);
 * - streamed path (a partial under 5 MiB first): the process is killed after the final's first part is stored and
 *   recorded; the restarted one goes on from that offset (before: it wrote from offset 0 and met 409 for ever);
 * - a final whose assembly keeps failing is given up after CONCAT_MAX_ATTEMPTS attempts, with its reason, an
 *   upload.failed webhook event, and its storage removed (before: retried until expiry).
 *
 * Each Freight has a database of its own: every Freight takes up the unfinished finals of its database, and other
 * test files' finals live on other buckets. The faults are driven by what S3 and the database say (an S3 relay
 * that acts between S3's answer and Freight's), never by waiting.
 */
import { DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { holdingProxy, startServerProcess, type HoldingProxy, type ServerProcess } from '../helpers/faults.js';
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
  startFreight,
  testS3Client,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../helpers/harness.js';
import { isCompleteMultipartUpload, isUploadPart, s3Relay, type S3Call, type S3Relay } from '../helpers/s3-relay.js';
import { createRawUpload, uploadIdOf } from '../helpers/tus-client.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
type Row = Record<string, unknown>;

const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });

let s3: S3Client;
let bucket: Awaited<ReturnType<typeof createTestBucket>>;
beforeAll(async () => {
  s3 = testS3Client();
  bucket = await createTestBucket(s3, 'freight-concat-recovery');
});
afterAll(async () => {
  await bucket?.drop();
  s3?.destroy();
});

/** A database of its own, and a connection to look at its rows. */
async function ownDatabase(prefix: string) {
  const db = await isolatedDatabase(prefix);
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  return {
    url: db.url,
    sql,
    row: async (id: string): Promise<Row | undefined> => (await sql`select * from file_uploads where id = ${id}`)[0],
    drop: async () => {
      await sql.end();
      await db.drop();
    },
  };
}

/** Finished partial uploads of `parts`, on the Freight at `baseUrl`; their URLs. */
async function partials(baseUrl: string, headers: Record<string, string>, parts: Buffer<ArrayBuffer>[]) {
  const urls: string[] = [];
  for (const data of parts) {
    const upload = await createRawUpload(baseUrl, headers, data, {
      'Upload-Length': String(data.length),
      'Upload-Concat': 'partial',
    });
    const patched = await upload.patch(0, data.length);
    if (patched.status !== 204) throw new Error(`PATCH of a partial answered ${patched.status}`);
    urls.push(upload.url);
  }
  return urls;
}

async function createFinal(baseUrl: string, headers: Record<string, string>, urls: string[]): Promise<string> {
  const created = await fetch(`${baseUrl}/files/`, {
    method: 'POST',
    headers: { ...TUS, ...headers, 'Upload-Concat': `final;${urls.join(' ')}` },
  });
  expect(created.status).toBe(201);
  return uploadIdOf(created.headers.get('location')!);
}

/** The row once its status is `status` (the bound only ends a hang: the test fails with the last state). */
async function reaches(row: (id: string) => Promise<Row | undefined>, id: string, status: string, timeoutMs = 60_000) {
  let last: Row | undefined;
  try {
    return await eventually(async () => {
      last = await row(id);
      return last?.status === status ? last : undefined;
    }, timeoutMs);
  } catch {
    throw new Error(
      `upload ${id} is not ${status}: ${last?.status} (${last?.error}), ${last?.assembly_attempts} attempts`,
    );
  }
}

/** What the bucket holds under the final's key, checked against the bytes it must be. */
async function expectObject(id: string, expected: Buffer, parts?: number) {
  expect(await sha256OfObject(s3, bucket.bucket, id)).toBe(sha256(expected));
  if (parts !== undefined) {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket.bucket, Key: id }));
    expect(head.ETag).toMatch(new RegExp(`-${parts}"$`));
  }
  expect((await listMultipartUploads(s3, bucket.bucket)).filter((upload) => upload.key === id)).toEqual([]);
}

describe('the database goes away between CompleteMultipartUpload and recording it', () => {
  let db: Awaited<ReturnType<typeof ownDatabase>>;
  let pgProxy: HoldingProxy;
  let relay: S3Relay;
  let freight: RunningFreight;
  const logs: string[] = [];
  beforeAll(async () => {
    db = await ownDatabase('freight_concat_blip');
    pgProxy = await holdingProxy(db.url);
    relay = await s3Relay(inject('s3').endpoint);
    freight = await startFreight(
      serviceEnv(bucket.bucket, {
        DATABASE_URL: pgProxy.url,
        DATABASE_TIMEOUT: '2s',
        S3_ENDPOINT: relay.url,
        S3_PART_SIZE: '5MiB',
        LOG_LEVEL: 'info',
      }),
      { logStream: { write: (line: string) => void logs.push(line) } },
    );
  });
  afterAll(async () => {
    await pgProxy?.up();
    await freight?.close();
    await relay?.close();
    await pgProxy?.down();
    await db?.drop();
  });

  test('a later attempt finds the object S3 made and records the completion: byte-identical, S3-joined', async () => {
    const headers = await auth(uniqueUser('blip'));
    const parts = [randomData(5 * MiB + 1), randomData(3 * MiB)];
    const urls = await partials(freight.url, headers, parts);
    let completed: S3Call | undefined;
    relay.hooks.beforeAnswer = async (call) => {
      if (completed || !isCompleteMultipartUpload(call) || call.status !== 200) return;
      completed = call;
      // S3 has made the object; Freight has not heard yet, and now cannot record it.
      await pgProxy.down();
    };
    const id = await createFinal(freight.url, headers, urls);
    // The attempt met the outage (it logs its failure; with the database away it can record nothing).
    await eventually(
      async () => logs.some((line) => line.includes('final upload could not be assembled')) || undefined,
    );
    expect(completed?.path).toBe(`/${bucket.bucket}/${id}`);
    await pgProxy.up();
    // The next attempt: at the next janitor run, or the retry 5 s after the failure, whichever comes first.
    await freight.app.janitor.run();
    const done = await reaches(db.row, id, 'completed');
    const joined = Buffer.concat(parts);
    expect(done).toMatchObject({ sha256: sha256(joined), total_size: String(joined.length), error: null });
    await expectObject(id, joined, 2);
    // S3 made the object once: no second CompleteMultipartUpload of another multipart upload.
    expect(relay.calls.filter((call) => isCompleteMultipartUpload(call) && call.path.endsWith(id))).toHaveLength(1);
  });
});

describe('the process is killed (SIGKILL) in the middle of an assembly', () => {
  let db: Awaited<ReturnType<typeof ownDatabase>>;
  let relay: S3Relay;
  let server: ServerProcess;
  beforeAll(async () => {
    db = await ownDatabase('freight_concat_kill');
    relay = await s3Relay(inject('s3').endpoint);
    server = await startServerProcess(
      serviceEnv(bucket.bucket, {
        DATABASE_URL: db.url,
        S3_ENDPOINT: relay.url,
        S3_PART_SIZE: '5MiB',
        LOG_LEVEL: 'info',
      }),
    );
  });
  afterAll(async () => {
    await server?.stop();
    await relay?.close();
    await db?.drop();
  });

  test('copy path, killed once S3 completed the object and before it was recorded: the restarted server records it', async () => {
    const headers = await auth(uniqueUser('kill-copy'));
    const parts = [randomData(5 * MiB + 3), randomData(5 * MiB), randomData(17)];
    const urls = await partials(server.url, headers, parts);
    let killed = false;
    relay.hooks.beforeAnswer = async (call) => {
      if (killed || !isCompleteMultipartUpload(call) || call.status !== 200) return;
      await server.kill('SIGKILL');
      killed = true;
    };
    const id = await createFinal(server.url, headers, urls);
    await eventually(async () => killed || undefined);
    relay.hooks = {};
    expect(await db.row(id)).toMatchObject({ status: 'pending', stored_offset: '0' });
    await server.restart();
    const done = await reaches(db.row, id, 'completed');
    const joined = Buffer.concat(parts);
    expect(done).toMatchObject({ sha256: sha256(joined), total_size: String(joined.length) });
    await expectObject(id, joined, 3);
  });

  test('copy path, killed after the first copy: the restarted server copies only what S3 does not list yet', async () => {
    const headers = await auth(uniqueUser('kill-copies'));
    const parts = [randomData(5 * MiB + 11), randomData(5 * MiB + 22), randomData(33)];
    const urls = await partials(server.url, headers, parts);
    let killed = false;
    relay.hooks.beforeAnswer = async (call) => {
      if (killed || !isUploadPart(call) || call.status !== 200 || call.query.get('partNumber') !== '1') return;
      await server.kill('SIGKILL');
      killed = true;
    };
    const id = await createFinal(server.url, headers, urls);
    await eventually(async () => killed || undefined);
    relay.hooks = {};
    const restartedAt = relay.calls.length;
    await server.restart();
    const done = await reaches(db.row, id, 'completed');
    const joined = Buffer.concat(parts);
    expect(done).toMatchObject({ sha256: sha256(joined), total_size: String(joined.length) });
    await expectObject(id, joined, 3);
    // Part 1 was in S3 (listed at its size): not copied again.
    const recopied = relay.calls
      .slice(restartedAt)
      .filter((call) => isUploadPart(call) && call.path.endsWith(id) && call.query.get('partNumber') === '1');
    expect(recopied).toEqual([]);
  });

  test('streamed path, killed after the first part was stored and recorded: the restarted server goes on from that offset', async () => {
    const headers = await auth(uniqueUser('kill-stream'));
    // A first partial under 5 MiB: S3 cannot join them, the bytes are streamed into the final (5 MiB parts).
    const parts = [randomData(2 * MiB), randomData(6 * MiB + 7), randomData(1)];
    const urls = await partials(server.url, headers, parts);
    const calls = relay.calls.length;
    let cut!: (error: Error) => void;
    const held = new Promise<void>((_resolve, reject) => (cut = reject));
    held.catch(() => {});
    // The final's part 1 passes (each attempt of it: a send retried under load is the same part); every other write
    // to S3 (another part, a staged object, the completion) is held back, so the assembly cannot get further.
    relay.hooks.beforeRequest = async (call) => {
      const writes = call.method === 'PUT' || (call.method === 'POST' && call.query.has('uploadId'));
      if (!writes) return;
      if (isUploadPart(call) && call.query.get('partNumber') === '1') return;
      await held;
    };
    const id = await createFinal(server.url, headers, urls);
    const stored = await eventually(async () => {
      const row = await db.row(id);
      return Number(row?.stored_offset ?? 0) > 0 ? row : undefined;
    });
    expect(Number(stored.stored_offset)).toBe(5 * MiB);
    await server.kill('SIGKILL');
    cut(new Error('the process is dead'));
    relay.hooks = {};
    const restartedAt = relay.calls.length;
    await server.restart();
    const done = await reaches(db.row, id, 'completed');
    const joined = Buffer.concat(parts);
    expect(done).toMatchObject({ sha256: sha256(joined), total_size: String(joined.length), error: null });
    await expectObject(id, joined, 2);
    // The restarted server went on from offset 5 MiB: it never wrote part 1 again.
    const rewritten = relay.calls
      .slice(restartedAt)
      .filter((call) => isUploadPart(call) && call.path.endsWith(id) && call.query.get('partNumber') === '1');
    expect(rewritten).toEqual([]);
    expect(relay.calls.length).toBeGreaterThan(calls);
  });
});

describe('an assembly that keeps failing', () => {
  let db: Awaited<ReturnType<typeof ownDatabase>>;
  let freight: RunningFreight;
  beforeAll(async () => {
    db = await ownDatabase('freight_concat_give_up');
    freight = await startFreight(
      serviceEnv(bucket.bucket, {
        DATABASE_URL: db.url,
        S3_PART_SIZE: '5MiB',
        CONCAT_MAX_ATTEMPTS: '2',
        // Events are written to the outbox whether or not the receiver answers (nothing listens on port 9).
        WEBHOOK_URL: 'http://127.0.0.1:9/hook',
        WEBHOOK_SECRET: 'w'.repeat(32),
      }),
    );
  });
  afterAll(async () => {
    await freight?.close();
    await db?.drop();
  });

  test('is given up after CONCAT_MAX_ATTEMPTS attempts: its reason, an upload.failed event, its storage removed, its partials free', async () => {
    const headers = await auth(uniqueUser('give-up'));
    const urls = await partials(freight.url, headers, [randomData(5 * MiB + 1), randomData(MiB)]);
    // The first partial's object is removed out of band: every copy of it fails (its row still says completed).
    await s3.send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: uploadIdOf(urls[0]!) }));
    const id = await createFinal(freight.url, headers, urls);

    const failed = await reaches(db.row, id, 'failed');
    expect(failed.assembly_attempts).toBe(1);
    expect(failed.error).toMatch(/storage error: NoSuch/);
    // The second attempt now (rather than 5 s after the first): the janitor takes up finals nobody assembles.
    await freight.app.janitor.run();
    const givenUp = await reaches(db.row, id, 'given_up');
    expect(givenUp.assembly_attempts).toBe(2);
    expect(givenUp.error).toMatch(/^assembly given up after 2 attempts: storage error: NoSuch/);

    const events = await db.sql`select event, payload from webhook_outbox where upload_id = ${id} order by id`;
    expect(events.map((event) => event.event)).toEqual(['upload.created', 'upload.failed', 'upload.failed']);
    expect(events.at(-1)?.payload).toMatchObject({ status: 'given_up' });
    // The give-up is recorded first and its storage removed after it (FinalAssemblies.failed): the row can say
    // given_up while the abort of its multipart upload is still in flight (seen once in CI).
    const leftInS3 = async () => (await listMultipartUploads(s3, bucket.bucket)).filter((upload) => upload.key === id);
    expect(await eventually(async () => ((await leftInS3()).length === 0 ? [] : undefined))).toEqual([]);

    const head = await fetch(`${freight.url}/files/${id}`, { method: 'HEAD', headers: { ...TUS, ...headers } });
    expect(head.status).toBe(410);
    // A final given up holds its partials no more: a new one may name them (and is terminated here at once).
    const again = await createFinal(freight.url, headers, urls);
    const terminated = await fetch(`${freight.url}/files/${again}`, {
      method: 'DELETE',
      headers: { ...TUS, ...headers },
    });
    expect(terminated.status).toBe(204);
  });
});

describe('assemblies at once', () => {
  let db: Awaited<ReturnType<typeof ownDatabase>>;
  let relay: S3Relay;
  let freight: RunningFreight;
  beforeAll(async () => {
    db = await ownDatabase('freight_concat_bound');
    relay = await s3Relay(inject('s3').endpoint);
    freight = await startFreight(
      serviceEnv(bucket.bucket, {
        DATABASE_URL: db.url,
        S3_ENDPOINT: relay.url,
        S3_PART_SIZE: '5MiB',
        CONCAT_CONCURRENCY: '1',
      }),
    );
  });
  afterAll(async () => {
    await freight?.close();
    await relay?.close();
    await db?.drop();
  });

  test('at most CONCAT_CONCURRENCY per instance: the second final starts once the first is done', async () => {
    const headers = await auth(uniqueUser('bound'));
    const first = await partials(freight.url, headers, [randomData(5 * MiB), randomData(100)]);
    const second = await partials(freight.url, headers, [randomData(5 * MiB), randomData(200)]);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let copying: string | undefined;
    relay.hooks.beforeRequest = async (call) => {
      if (!isUploadPart(call)) return;
      copying ??= call.path;
      await held;
    };
    const a = await createFinal(freight.url, headers, first);
    const b = await createFinal(freight.url, headers, second);
    // The first assembly is held at its first copy; the second has not asked S3 for anything.
    await eventually(async () => copying);
    const touched = (id: string) => relay.calls.filter((call) => call.path === `/${bucket.bucket}/${id}`);
    const [running, waiting] = copying === `/${bucket.bucket}/${a}` ? [a, b] : [b, a];
    expect(touched(running).length).toBeGreaterThan(0);
    expect(touched(waiting)).toEqual([]);
    expect((await db.row(waiting))?.status).toBe('pending');
    release();
    relay.hooks = {};
    await reaches(db.row, a, 'completed');
    await reaches(db.row, b, 'completed');
    // In the order S3 saw them: the waiting final's first call comes after the running one's completion.
    const order = relay.calls.map((call) => call.path);
    const runningCompleted = relay.calls.findIndex(
      (call) => isCompleteMultipartUpload(call) && call.path === `/${bucket.bucket}/${running}`,
    );
    expect(runningCompleted).toBeGreaterThan(-1);
    expect(order.indexOf(`/${bucket.bucket}/${waiting}`)).toBeGreaterThan(runningCompleted);
  });
});
