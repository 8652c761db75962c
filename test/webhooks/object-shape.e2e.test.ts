/**
 * What the pre-create answer makes of the object, end to end: real PostgreSQL (a database of this file's own: the
 * janitor acts on every upload of its database), a real S3 gateway, and a local receiver that answers the
 * pre-create check. The key (under S3_KEY_PREFIX), Content-Type, Content-Disposition, storage class, tags and
 * metadata the receiver names are what S3 holds, on the tus path (tus-js-client) and the direct path (the direct
 * API's client, and Companion's create as Uppy calls it); hostile or taken keys and malformed answers are 502s
 * that create nothing; the janitor keeps shaped uploads, removes their leftovers, and touches nothing outside the
 * prefix; a shaped upload downloads.
 */
import { randomUUID } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { uploadDirect } from '../../src/client/direct-upload.js';
import { bufferSource } from '../../src/client/sources.js';
import { runJanitor } from '../../src/janitor/janitor.js';
import { openJanitorDeps } from '../../src/janitor/wiring.js';
import {
  MiB,
  eventually,
  listMultipartUploads,
  randomData,
  serviceEnv,
  sha256,
  silentLogger,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
  isolatedServices,
} from '../helpers/harness.js';
import { createRawUpload, startTusUpload, uploadIdOf } from '../helpers/tus-client.js';
import { receiverForFile, type Answer, type Received } from './receiver.js';

const ctx = isolatedServices('freight-shape');
const receiver = receiverForFile();

const PREFIX = 'uploads/';

let freight: RunningFreight;

beforeAll(async () => {
  freight = await startFreight(
    serviceEnv(ctx.bucket.bucket, {
      DATABASE_URL: ctx.database.url,
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: 'shape-test-secret-0123456789abcdefgh',
      WEBHOOK_TIMEOUT: '5s',
      WEBHOOK_PRE_CREATE: 'true',
      S3_KEY_PREFIX: PREFIX,
      JANITOR_INTERVAL: '0',
    }),
  );
});
afterAll(async () => {
  await freight?.close();
});

/** The receiver answers every pre-create check with this `object` (other events: 204). */
function shapeWith(object: (request: Received) => unknown): void {
  receiver.answer = (request): Answer =>
    request.json.event === 'upload.pre-create'
      ? { status: 200, contentType: 'application/json', body: JSON.stringify({ allow: true, object: object(request) }) }
      : { status: 204 };
}

const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });
const head = (key: string) => ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket.bucket, Key: key }));
const tagsOf = async (key: string) =>
  Object.fromEntries(
    ((await ctx.s3.send(new GetObjectTaggingCommand({ Bucket: ctx.bucket.bucket, Key: key }))).TagSet ?? []).map(
      (tag) => [tag.Key, tag.Value],
    ),
  );
const rowOf = async (id: string) =>
  (await ctx.sql`select storage_key, object_shape, status from file_uploads where id = ${id}`)[0] as
    | { storage_key: string; object_shape: unknown; status: string }
    | undefined;
const rowsOf = async (user: string) => (await ctx.sql`select id from file_uploads where user_id = ${user}`).length;

/** A shape per upload, keyed by a name the test chooses (the client's file name reaches the receiver). */
const SHAPE = (name: string) => ({
  key: `reports/2026/${name}`,
  contentType: 'application/pdf',
  contentDisposition: { type: 'inline', filename: `Rapport été ${name}` },
  storageClass: 'STANDARD',
  tags: { team: 'finance', 'case id': 'A-42', path: 'a/b:c@d' },
  metadata: { origin: 'hook', 'Review-State': 'pending' },
});
const SHAPED_DISPOSITION = (name: string) =>
  `inline; filename="Rapport _t_ ${name}"; filename*=UTF-8''Rapport%20%C3%A9t%C3%A9%20${encodeURIComponent(name)}`;

describe('the object as the pre-create answer shapes it', () => {
  test('tus (tus-js-client): key under the prefix, type, disposition, tags and metadata; no client metadata', async () => {
    shapeWith((request) => SHAPE(request.json.upload.filename));
    const user = uniqueUser('shaped-tus');
    const data = randomData(3000);
    const url = await startTusUpload(data, {
      endpoint: `${freight.url}/files/`,
      headers: await auth(user),
      // The client claims HTML and sends metadata of its own: none of it reaches the object.
      metadata: { filename: 'q1.pdf', filetype: 'text/html', secret: 'client-only' },
    }).done;
    const id = uploadIdOf(url);
    const key = `${PREFIX}reports/2026/q1.pdf`;
    expect(await rowOf(id)).toMatchObject({
      storage_key: key,
      status: 'completed',
      object_shape: {
        contentType: 'application/pdf',
        contentDisposition: SHAPED_DISPOSITION('q1.pdf'),
        storageClass: 'STANDARD',
        tags: { team: 'finance', 'case id': 'A-42', path: 'a/b:c@d' },
        metadata: { origin: 'hook', 'Review-State': 'pending' },
      },
    });
    const object = await head(key);
    expect(object.ContentLength).toBe(data.length);
    expect(object.ContentType).toBe('application/pdf');
    expect(object.ContentDisposition).toBe(SHAPED_DISPOSITION('q1.pdf'));
    expect(object.Metadata).toEqual({ origin: 'hook', 'review-state': 'pending' });
    // The hook's tags and Freight's own SHA-256 tag, together (S3 replaces tags as a whole).
    expect(await tagsOf(key)).toEqual({ team: 'finance', 'case id': 'A-42', path: 'a/b:c@d', sha256: sha256(data) });
    // Nothing at the id's key.
    await expect(head(`${PREFIX}${id}`)).rejects.toMatchObject({ name: 'NotFound' });
    // The API lists it with its key, and it downloads.
    const listed = (await (await fetch(`${freight.url}/api/uploads/${id}`, { headers: await auth(user) })).json()) as {
      storageKey: string;
    };
    expect(listed.storageKey).toBe(key);
    const download = await fetch(`${freight.url}/api/uploads/${id}/download`, { headers: await auth(user) });
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(data)).toBe(true);
  });

  test('tus, several parts (the multipart upload is created shaped); a zero-byte upload (PutObject) too', async () => {
    shapeWith((request) => SHAPE(request.json.upload.filename));
    const user = uniqueUser('shaped-parts');
    const data = randomData(9 * MiB);
    const url = await startTusUpload(data, {
      endpoint: `${freight.url}/files/`,
      headers: await auth(user),
      metadata: { filename: 'big.pdf' },
      chunkSize: 3 * MiB,
    }).done;
    const key = `${PREFIX}reports/2026/big.pdf`;
    expect((await rowOf(uploadIdOf(url)))?.storage_key).toBe(key);
    const object = await head(key);
    expect(object.ETag).toMatch(/-2"$/);
    expect(object.ContentType).toBe('application/pdf');
    expect(object.ContentDisposition).toBe(SHAPED_DISPOSITION('big.pdf'));
    expect(object.Metadata).toEqual({ origin: 'hook', 'review-state': 'pending' });
    expect(await tagsOf(key)).toMatchObject({ team: 'finance', sha256: sha256(data) });

    const empty = await createRawUpload(freight.url, await auth(user), randomData(0), {
      'Upload-Length': '0',
      'Upload-Metadata': `filename ${Buffer.from('empty.pdf').toString('base64')}`,
    });
    const emptyKey = `${PREFIX}reports/2026/empty.pdf`;
    expect(await rowOf(empty.id)).toMatchObject({ storage_key: emptyKey, status: 'completed' });
    const emptyObject = await head(emptyKey);
    expect(emptyObject.ContentLength).toBe(0);
    expect(emptyObject.ContentType).toBe('application/pdf');
    expect(emptyObject.Metadata).toEqual({ origin: 'hook', 'review-state': 'pending' });
    expect(await tagsOf(emptyKey)).toMatchObject({ team: 'finance', 'case id': 'A-42' });
  });

  test('direct: the multipart upload is created shaped, the signed part URLs work, the object is the shape', async () => {
    shapeWith((request) => SHAPE(request.json.upload.filename));
    const user = uniqueUser('shaped-direct');
    const data = randomData(6 * MiB);
    const result = await uploadDirect({
      endpoint: freight.url,
      token: await tokenFor(user),
      source: bufferSource(data),
      filename: 'direct.pdf',
      mimeType: 'text/html',
      metadata: { secret: 'client-only' },
      partSize: 5 * MiB,
    });
    const key = `${PREFIX}reports/2026/direct.pdf`;
    expect(result.key).toBe(key);
    expect(result.location).toMatch(/\/uploads\/reports\/2026\/direct\.pdf$/);
    expect((await rowOf(result.id))?.storage_key).toBe(key);
    const object = await head(key);
    expect(object.ContentLength).toBe(data.length);
    expect(object.ETag).toMatch(/-2"$/);
    expect(object.ContentType).toBe('application/pdf');
    expect(object.ContentDisposition).toBe(SHAPED_DISPOSITION('direct.pdf'));
    expect(object.Metadata).toEqual({ origin: 'hook', 'review-state': 'pending' });
    expect(await tagsOf(key)).toEqual({ team: 'finance', 'case id': 'A-42', path: 'a/b:c@d' });
    const download = await fetch(`${freight.url}/api/uploads/${result.id}/download`, { headers: await auth(user) });
    expect(download.status).toBe(200);
    expect(sha256(Buffer.from(await download.arrayBuffer()))).toBe(sha256(data));
  });

  test('tus concatenation (tus-js-client, parallelUploads): partials at keys of their own, the final shaped, joined by S3', async () => {
    // tus-js-client sends the metadata with the final upload only: that is how the receiver tells them apart.
    shapeWith((request) =>
      request.json.upload.filename ? SHAPE(request.json.upload.filename) : { key: `parts/${randomUUID()}` },
    );
    const user = uniqueUser('shaped-concat');
    const data = randomData(11 * MiB);
    const url = await startTusUpload(data, {
      endpoint: `${freight.url}/files/`,
      headers: await auth(user),
      metadata: { filename: 'joined.pdf' },
      parallelUploads: 2,
    }).done;
    const key = `${PREFIX}reports/2026/joined.pdf`;
    const final = await eventually(async () => {
      const row = await rowOf(uploadIdOf(url));
      return row?.status === 'completed' ? row : undefined;
    });
    expect(final.storage_key).toBe(key);
    const partials = await ctx.sql`select storage_key from file_uploads where user_id = ${user} and concat = 'partial'`;
    expect(partials.map((partial) => partial.storage_key)).toEqual([
      expect.stringMatching(new RegExp(`^${PREFIX}parts/[0-9a-f-]{36}$`)),
      expect.stringMatching(new RegExp(`^${PREFIX}parts/[0-9a-f-]{36}$`)),
    ]);
    const object = await head(key);
    expect(object.ContentLength).toBe(data.length);
    expect(object.ContentType).toBe('application/pdf');
    expect(object.Metadata).toEqual({ origin: 'hook', 'review-state': 'pending' });
    expect(await tagsOf(key)).toEqual({ team: 'finance', 'case id': 'A-42', path: 'a/b:c@d', sha256: sha256(data) });
    const download = await fetch(`${freight.url}/api/uploads/${uploadIdOf(url)}/download`, {
      headers: await auth(user),
    });
    expect(sha256(Buffer.from(await download.arrayBuffer()))).toBe(sha256(data));
  });

  test('the receiver is told the id the upload will have, and may name the key by it', async () => {
    shapeWith((request) => ({ key: `users/${request.json.upload.userId}/${request.json.upload.id}` }));
    const user = uniqueUser('by-id');
    const created = await createRawUpload(freight.url, await auth(user), randomData(10));
    expect((await rowOf(created.id))?.storage_key).toBe(`${PREFIX}users/${user}/${created.id}`);
  });

  test("Companion's create (as Uppy's @uppy/aws-s3 calls it) answers the shaped key, and signs parts by it", async () => {
    shapeWith(() => ({ key: `companion/${randomUUID()}.bin`, contentType: 'application/zip' }));
    const headers = { ...(await auth(uniqueUser('shaped-companion'))), 'Content-Type': 'application/json' };
    const created = await fetch(`${freight.url}/s3/multipart`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ filename: 'a.zip', type: 'text/html', metadata: { name: 'a.zip' } }),
    });
    expect(created.status).toBe(200);
    const { key, uploadId } = (await created.json()) as { key: string; uploadId: string };
    expect(key).toMatch(new RegExp(`^${PREFIX}companion/[0-9a-f-]{36}\\.bin$`));
    const signed = await fetch(`${freight.url}/s3/multipart/${uploadId}/1?key=${encodeURIComponent(key)}`, {
      headers,
    });
    expect(signed.status).toBe(200);
    const part = await fetch(((await signed.json()) as { url: string }).url, { method: 'PUT', body: randomData(100) });
    expect(part.status).toBe(200);
    const done = await fetch(`${freight.url}/s3/multipart/${uploadId}/complete?key=${encodeURIComponent(key)}`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ parts: [{ PartNumber: 1, ETag: part.headers.get('etag') }] }),
    });
    expect(done.status).toBe(200);
    expect((await head(key)).ContentType).toBe('application/zip');
  });

  test('without a shape: S3_KEY_PREFIX then the id, on both paths; bytes to download, no metadata, no client type', async () => {
    const user = uniqueUser('unshaped');
    const data = randomData(1000);
    const url = await startTusUpload(data, {
      endpoint: `${freight.url}/files/`,
      headers: await auth(user),
      metadata: { filename: 'plain.txt', filetype: 'text/html', secret: 'client-only' },
    }).done;
    const id = uploadIdOf(url);
    expect((await rowOf(id))?.storage_key).toBe(`${PREFIX}${id}`);
    const object = await head(`${PREFIX}${id}`);
    expect(object.ContentType).toBe('application/octet-stream');
    expect(object.ContentDisposition).toMatch(/^attachment; filename="plain.txt"/);
    expect(object.Metadata).toEqual({});
    expect(await tagsOf(`${PREFIX}${id}`)).toEqual({ sha256: sha256(data) });

    const direct = await uploadDirect({
      endpoint: freight.url,
      token: await tokenFor(user),
      source: bufferSource(data),
      filename: 'plain.bin',
      mimeType: 'text/html',
      metadata: { secret: 'client-only' },
    });
    expect(direct.key).toBe(`${PREFIX}${direct.id}`);
    const directObject = await head(direct.key);
    expect(directObject.ContentType).toBe('application/octet-stream');
    expect(directObject.Metadata).toEqual({});
  });
});

describe('an answer Freight refuses is 502 to the client, and creates nothing', () => {
  beforeAll(async () => {
    // A completed upload (its object is there), an open one (no object yet), and an object no row knows.
    shapeWith(() => ({ key: 'taken/one.bin' }));
    const url = await startTusUpload(randomData(10), {
      endpoint: `${freight.url}/files/`,
      headers: await auth(uniqueUser('first')),
    }).done;
    expect((await rowOf(uploadIdOf(url)))?.storage_key).toBe(`${PREFIX}taken/one.bin`);
    shapeWith(() => ({ key: 'taken/open.bin' }));
    const open = await createRawUpload(freight.url, await auth(uniqueUser('second')), randomData(10));
    expect((await rowOf(open.id))?.storage_key).toBe(`${PREFIX}taken/open.bin`);
    await ctx.s3.send(
      new PutObjectCommand({ Bucket: ctx.bucket.bucket, Key: `${PREFIX}foreign/x.bin`, Body: 'theirs' }),
    );
  });

  const refusals: Array<[string, Answer, RegExp]> = [
    ['a key with ..', shaped({ key: '../x' }), /object\.key "\.\.\/x" has an empty, "\." or "\.\." segment/],
    ['a key with .. inside', shaped({ key: 'a/../../x' }), /"\.\." segment/],
    ['an absolute key', shaped({ key: '/abs' }), /must not start with "\/"/],
    [
      'a key of 2,000 characters',
      shaped({ key: 'k'.repeat(2000) }),
      /object\.key is 2008 bytes with the prefix; at most 960/,
    ],
    ['a key with a control character', shaped({ key: 'a\u0001b' }), /holds a control character/],
    ['a key with a newline', shaped({ key: 'a\nb' }), /holds a control character/],
    ['a key under staged bytes', shaped({ key: 'x.staging/part-1' }), /holds "\.staging\/"/],
    [
      'a completed upload’s key',
      shaped({ key: 'taken/one.bin' }),
      /the key "uploads\/taken\/one\.bin", where the bucket already holds an object/,
    ],
    [
      'an open upload’s key',
      shaped({ key: 'taken/open.bin' }),
      /the key "uploads\/taken\/open\.bin", which another upload has/,
    ],
    [
      'the key of an object no row knows',
      shaped({ key: 'foreign/x.bin' }),
      /the key "uploads\/foreign\/x\.bin", where the bucket already holds an object/,
    ],
    [
      'eleven tags',
      shaped({ tags: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`t${i}`, 'v'])) }),
      /object\.tags has 11 tags; S3 keeps 10 per object and Freight sets sha256, so at most 9/,
    ],
    ['a tag key of 129 characters', shaped({ tags: { ['k'.repeat(129)]: 'v' } }), /must be 1 to 128/],
    ['metadata over 2 KB', shaped({ metadata: { big: 'x'.repeat(2100) } }), /object\.metadata is 2103 bytes/],
    ['an unknown storage class', shaped({ storageClass: 'COLD' }), /object\.storageClass must be one of S3's/],
    [
      'a header in a content type',
      shaped({ contentType: 'text/plain\r\nX-Evil: 1' }),
      /object\.contentType must be a media type/,
    ],
    ['a misspelt member', shaped({ content_type: 'text/plain' }), /unknown member "content_type"/],
    [
      'invalid JSON',
      { status: 200, contentType: 'application/json', body: '{"object": {' },
      /its body is not valid JSON/,
    ],
  ];

  test.each(refusals)('%s: tus POST and direct create are 502 with the reason', async (_name, answer, reason) => {
    receiver.answer = (request) => (request.json.event === 'upload.pre-create' ? answer : { status: 204 });
    const user = uniqueUser('refused');
    const tus = await fetch(`${freight.url}/files/`, {
      method: 'POST',
      headers: { ...(await auth(user)), 'Tus-Resumable': '1.0.0', 'Upload-Length': '10' },
    });
    expect(tus.status).toBe(502);
    const text = await tus.text();
    expect(text).toMatch(/^ERR_WEBHOOK_BAD_ANSWER: the pre-create check answered with /);
    expect(text).toMatch(reason);
    expect(text).not.toMatch(/\n\s+at /);
    const direct = await fetch(`${freight.url}/api/multipart`, {
      method: 'POST',
      headers: { ...(await auth(user)), 'Content-Type': 'application/json' },
      body: JSON.stringify({ filename: 'x.bin', size: 10 }),
    });
    expect(direct.status).toBe(502);
    const body = (await direct.json()) as { error: string; message: string };
    expect(body.error).toBe('ERR_WEBHOOK_BAD_ANSWER');
    expect(body.message).toMatch(reason);
    expect(await rowsOf(user)).toBe(0);
  });

  test('a 2xx that is not JSON, or JSON without `object`, allows the upload unshaped (receivers of before)', async () => {
    for (const answer of [
      { status: 200, contentType: 'text/plain', body: 'OK' },
      { status: 200, contentType: 'application/json', body: '{"allowed": true}' },
      { status: 204 },
    ] satisfies Answer[]) {
      receiver.answer = (request) => (request.json.event === 'upload.pre-create' ? answer : { status: 204 });
      const user = uniqueUser('plain');
      const created = await createRawUpload(freight.url, await auth(user), randomData(10));
      expect(await rowOf(created.id)).toMatchObject({ storage_key: `${PREFIX}${created.id}`, object_shape: null });
    }
  });

  test('a hostile answer through tus-js-client fails the upload with the reason, and nothing is created', async () => {
    receiver.answer = (request) =>
      request.json.event === 'upload.pre-create' ? shaped({ key: '../../etc/passwd' }) : { status: 204 };
    const user = uniqueUser('tus-refused');
    const error = await startTusUpload(randomData(10), {
      endpoint: `${freight.url}/files/`,
      headers: await auth(user),
    }).done.then(
      () => undefined,
      (failure: Error) => failure,
    );
    expect(error?.message).toMatch(/response code: 502.*ERR_WEBHOOK_BAD_ANSWER/s);
    expect(await rowsOf(user)).toBe(0);
  });
});

function shaped(object: unknown): Answer {
  return { status: 200, contentType: 'application/json', body: JSON.stringify({ object }) };
}

describe('the janitor with custom keys and a prefix', () => {
  test('keeps shaped uploads, removes their leftovers, and touches nothing outside the prefix or not Freight’s', async () => {
    const user = uniqueUser('janitor');
    const headers = await auth(user);
    // A completed upload at a custom key, with staged leftovers its completion could not remove.
    shapeWith(() => ({ key: 'kept/done.bin', tags: { keep: 'yes' } }));
    const done = uploadIdOf(await startTusUpload(randomData(100), { endpoint: `${freight.url}/files/`, headers }).done);
    const doneKey = `${PREFIX}kept/done.bin`;
    const leftover = `${doneKey}.staging/tail-0-100`;
    await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket.bucket, Key: leftover, Body: 'left' }));
    // An open direct upload at a custom key: its multipart upload is kept.
    shapeWith(() => ({ key: 'open/going.bin' }));
    const open = (await (
      await fetch(`${freight.url}/api/multipart`, {
        method: 'POST',
        headers: { ...headers, 'Content-Type': 'application/json' },
        body: JSON.stringify({ filename: 'going.bin', size: 10 * MiB }),
      })
    ).json()) as { id: string; key: string };
    expect(open.key).toBe(`${PREFIX}open/going.bin`);
    // An upload at a custom key that was aborted while S3 refused to abort its multipart upload.
    shapeWith(() => ({ key: 'ended/gone.bin' }));
    const ended = (await (
      await fetch(`${freight.url}/api/multipart`, {
        method: 'POST',
        headers: { ...headers, 'Content-Type': 'application/json' },
        body: JSON.stringify({ filename: 'gone.bin', size: 10 * MiB }),
      })
    ).json()) as { id: string; key: string };
    await ctx.sql`update file_uploads set status = 'aborted' where id = ${ended.id}`;
    // Multipart uploads no row records: under the prefix and named as Freight names keys (its orphan), under the
    // prefix and named otherwise (not Freight's), and outside the prefix, named as Freight would without one.
    const orphanKey = `${PREFIX}${randomUUID()}`;
    const foreignKey = `${PREFIX}foreign/thing.bin`;
    const outsideKey = randomUUID();
    for (const key of [orphanKey, foreignKey, outsideKey])
      await ctx.s3.send(new CreateMultipartUploadCommand({ Bucket: ctx.bucket.bucket, Key: key }));
    const outsideStaged = `${randomUUID()}.staging/tail-0-4`;
    await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket.bucket, Key: outsideStaged, Body: 'out!' }));

    const janitor = await openJanitorDeps(freight.config, silentLogger());
    try {
      const now = await runJanitor(janitor.deps);
      expect(now.failures).toBe(0);
      const keys = async () =>
        (await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).map((upload) => upload.key).sort();
      // Today: the ended upload's multipart upload is aborted, the completed upload's leftover removed.
      expect(await keys()).toEqual([orphanKey, foreignKey, open.key, outsideKey].sort());
      await expect(head(leftover)).rejects.toMatchObject({ name: 'NotFound' });
      expect((await head(doneKey)).ContentLength).toBe(100);
      expect(await tagsOf(doneKey)).toMatchObject({ keep: 'yes' });
      expect((await rowOf(done))?.status).toBe('completed');

      // Two days on, the unrecorded ones are old: only Freight's orphan under the prefix goes.
      const later = await runJanitor({ ...janitor.deps, now: () => new Date(Date.now() + 2 * 86_400_000) });
      expect(later.failures).toBe(0);
      expect(await keys()).toEqual([foreignKey, open.key, outsideKey].sort());
      expect((await head(outsideStaged)).ContentLength).toBe(4);
      expect((await head(doneKey)).ContentLength).toBe(100);
    } finally {
      await janitor.close();
      for (const upload of await listMultipartUploads(ctx.s3, ctx.bucket.bucket)) {
        if (upload.key === open.key) continue;
        await ctx.s3.send(
          new AbortMultipartUploadCommand({ Bucket: ctx.bucket.bucket, Key: upload.key, UploadId: upload.uploadId }),
        );
      }
    }
  });
});
