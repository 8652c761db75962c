/**
 * The gate before completion (WEBHOOK_PRE_FINISH) end to end: real PostgreSQL (a database of this file's own), a
 * real S3 gateway, a local receiver, and the clients as they are: tus-js-client, and the calls @uppy/aws-s3 makes to
 * the Companion routes (answered as Uppy reads them: any 2xx with a location is done, anything else an error).
 * The receiver approves (completed), refuses (rejected, the object gone, the client told its message), or does not
 * answer (awaiting_approval, shown by HEAD and the API, never expired, asked again once its backoff has passed:
 * the test moves the server's clock instead of waiting).
 */
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { verifySignature } from '../../src/webhooks/signature.js';
import {
  MiB,
  eventually,
  listMultipartUploads,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  startFreight,
  tokenFor,
  uniqueUser,
  isolatedServices,
  type RunningFreight,
} from '../helpers/harness.js';
import { createRawUpload, startTusUpload, uploadIdOf } from '../helpers/tus-client.js';
import { answerPreFinish, receiverForFile, type Received } from './receiver.js';

const ctx = isolatedServices('freight-pre-finish');
const receiver = receiverForFile();

const SECRET = 'webhook-test-secret-0123456789abcdef';

let freight: RunningFreight;
/** The server's clock: still unless a test moves it. */
const started = Date.now();
let moved = 0;
const now = () => new Date(started + moved);

beforeAll(async () => {
  freight = await startFreight(
    serviceEnv(ctx.bucket.bucket, {
      DATABASE_URL: ctx.database.url,
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_TIMEOUT: '1s',
      WEBHOOK_PRE_FINISH: 'true',
      WEBHOOK_PROGRESS_INTERVAL: '0',
      JANITOR_INTERVAL: '0',
    }),
    { now },
  );
});
afterAll(async () => {
  await freight?.close();
});

const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });
const preFinishesOf = (filename: string) =>
  receiver.received.filter(
    (request) => request.json.event === 'upload.pre-finish' && request.json.upload.filename === filename,
  );
const api = async (user: string, id: string) =>
  (await (await fetch(`${freight.url}/api/uploads/${id}`, { headers: await auth(user) })).json()) as Record<
    string,
    any
  >;
const head = async (user: string, id: string) =>
  fetch(`${freight.url}/files/${id}`, { method: 'HEAD', headers: { ...(await auth(user)), 'Tus-Resumable': '1.0.0' } });
const objectExists = (key: string) =>
  ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket.bucket, Key: key })).then(
    () => true,
    (error: { name?: string }) => (error.name === 'NotFound' ? false : Promise.reject(error)),
  );
/** The upload events delivered for an upload, in the order of its changes. */
async function eventsOf(id: string, count: number): Promise<Received[]> {
  await eventually(async () => {
    const [row] =
      await ctx.sql`select count(*)::int as n, count(delivered_at)::int as delivered from webhook_outbox where upload_id = ${id}`;
    return row!.n === count && row!.delivered === count ? true : undefined;
  }, 30_000);
  const seen = new Map<number, Received>();
  for (const request of receiver.received) {
    if (request.json.id !== undefined && request.json.upload.id === id) seen.set(request.json.id, request);
  }
  return [...seen.values()].sort((a, b) => a.json.id! - b.json.id!);
}

/** A tus-js-client upload: the URL and the last PATCH's answer, or the error it ended with. */
async function tusUpload(user: string, data: Buffer<ArrayBuffer>, filename: string) {
  let last: { status: number; uploadStatus: string | undefined } | undefined;
  let url: string | undefined;
  const run = startTusUpload(data, {
    endpoint: `${freight.url}/files/`,
    headers: await auth(user),
    metadata: { filename },
    chunkSize: 5 * MiB,
    // The defaults of a real client: a 4xx other than 409/423 is not retried, anything else is.
    retryDelays: [0, 100, 200],
    onUploadUrlAvailable: () => {
      url = run.upload.url ?? undefined;
    },
    onAfterResponse: (request, response) => {
      if (request.getMethod() === 'PATCH') {
        last = { status: response.getStatus(), uploadStatus: response.getHeader('Freight-Upload-Status') };
      }
    },
  });
  try {
    await run.done;
    return { ok: true as const, id: uploadIdOf(run.upload.url!), last, requests: run.requests };
  } catch (error) {
    const response = (error as { originalResponse?: { getStatus(): number; getBody(): string } }).originalResponse;
    return {
      ok: false as const,
      id: uploadIdOf(url ?? run.upload.url ?? ''),
      status: response?.getStatus(),
      body: response?.getBody(),
      requests: run.requests,
    };
  }
}

/** The Companion calls @uppy/aws-s3 makes for a file (create, sign and PUT each 5 MiB part, complete). */
async function uppyUpload(user: string, data: Buffer<ArrayBuffer>, filename: string) {
  const call = async (method: string, path: string, body?: unknown) =>
    fetch(`${freight.url}/s3${path}`, {
      method,
      headers: { ...(await auth(user)), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const created = (await (await call('POST', '/multipart', { filename, type: 'application/pdf' })).json()) as {
    key: string;
    uploadId: string;
  };
  const query = `?key=${encodeURIComponent(created.key)}`;
  const parts: Array<{ PartNumber: number; ETag: string }> = [];
  for (let start = 0, n = 1; start < data.length; start += 5 * MiB, n++) {
    const signed = (await (
      await call('GET', `/multipart/${encodeURIComponent(created.uploadId)}/${n}${query}`)
    ).json()) as {
      url: string;
    };
    const put = await fetch(signed.url, { method: 'PUT', body: data.subarray(start, start + 5 * MiB) });
    parts.push({ PartNumber: n, ETag: put.headers.get('etag')! });
  }
  const complete = () => call('POST', `/multipart/${encodeURIComponent(created.uploadId)}/complete${query}`, { parts });
  const [row] = await ctx.sql`select id from file_uploads where s3_upload_id = ${created.uploadId}`;
  return {
    ...created,
    id: row!.id as string,
    parts: parts.map((part) => ({ partNumber: part.PartNumber, etag: part.ETag })),
    complete,
    list: () => call('GET', `/multipart/${encodeURIComponent(created.uploadId)}${query}`),
  };
}

describe('tus-js-client through the gate', () => {
  test('approved: the receiver is asked, signed, about the stored and verified upload; then it is completed', async () => {
    const user = uniqueUser('approved');
    const data = randomData(7 * MiB + 3);
    answerPreFinish(receiver, 'ok.pdf', () => ({ status: 200 }));
    const result = await tusUpload(user, data, 'ok.pdf');
    expect(result).toMatchObject({ ok: true, last: { status: 204, uploadStatus: undefined } });

    const [asked, ...again] = preFinishesOf('ok.pdf');
    expect(again).toEqual([]);
    expect(verifySignature(SECRET, asked!.raw, String(asked!.headers['freight-signature']))).toBe(true);
    expect(asked!.headers['freight-event']).toBe('upload.pre-finish');
    expect(Object.keys(asked!.json)).toEqual(['event', 'upload', 'occurredAt']);
    expect(asked!.json.upload).toMatchObject({
      id: result.id,
      status: 'awaiting_approval',
      totalSize: data.length,
      bytesReceived: data.length,
      sha256: sha256(data),
      partsCount: 1,
      completedAt: null,
    });
    const upload = await api(user, result.id);
    expect(upload).toMatchObject({ status: 'completed', sha256: sha256(data), error: null });
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, upload.storageKey)).toBe(sha256(data));
    const events = await eventsOf(result.id, 2);
    expect(events.map((request) => [request.json.event, request.json.upload.status])).toEqual([
      ['upload.created', 'pending'],
      ['upload.completed', 'completed'],
    ]);
  });

  test('refused: the last PATCH gets the receiver status and message (not retried), the object is gone, the upload rejected', async () => {
    const user = uniqueUser('refused');
    answerPreFinish(receiver, 'eicar.pdf', () => ({
      status: 422,
      contentType: 'application/json',
      body: JSON.stringify({ message: 'malware found: EICAR-Test-File' }),
    }));
    const result = await tusUpload(user, randomData(6 * MiB), 'eicar.pdf');
    expect(result).toMatchObject({
      ok: false,
      status: 422,
      body: 'ERR_UPLOAD_REJECTED: malware found: EICAR-Test-File\n',
    });
    // tus-js-client does not retry a 422: one PATCH per chunk, the last refused once.
    expect(result.requests.filter((request) => request.method === 'PATCH')).toHaveLength(2);
    expect(preFinishesOf('eicar.pdf')).toHaveLength(1);

    const upload = await api(user, result.id);
    expect(upload).toMatchObject({
      status: 'rejected',
      error: 'the pre-finish check refused it: malware found: EICAR-Test-File',
    });
    expect(await objectExists(upload.storageKey)).toBe(false);
    expect(
      (await listMultipartUploads(ctx.s3, ctx.bucket.bucket)).filter((found) => found.key === upload.storageKey),
    ).toEqual([]);
    const gone = await head(user, result.id);
    expect(gone.status).toBe(410);
    const events = await eventsOf(result.id, 2);
    expect(events.map((request) => [request.json.event, request.json.upload.status])).toEqual([
      ['upload.created', 'pending'],
      ['upload.failed', 'rejected'],
    ]);
  });

  test('no answer: the client is done (204, Freight-Upload-Status), HEAD and the API show awaiting_approval, it never expires; asked again later, approved, completed', async () => {
    const user = uniqueUser('patient');
    const data = randomData(2 * MiB);
    answerPreFinish(receiver, 'scan.pdf', () => 'hang');
    const result = await tusUpload(user, data, 'scan.pdf');
    expect(result).toMatchObject({ ok: true, last: { status: 204, uploadStatus: 'awaiting_approval' } });

    const resume = await head(user, result.id);
    expect(resume.status).toBe(200);
    expect(resume.headers.get('upload-offset')).toBe(String(data.length));
    expect(resume.headers.get('upload-length')).toBe(String(data.length));
    expect(resume.headers.get('freight-upload-status')).toBe('awaiting_approval');
    expect(resume.headers.get('upload-expires')).toBeNull();
    const waiting = await api(user, result.id);
    expect(waiting).toMatchObject({ status: 'awaiting_approval', expiresAt: null, completedAt: null });
    expect(waiting.error).toMatch(
      /^awaiting approval: the pre-finish check did not answer \(no answer within 1 s\); asked again at /,
    );
    // Not downloadable yet.
    expect((await fetch(`${freight.url}/files/${result.id}`, { headers: await auth(user) })).status).toBe(409);
    // Not asked again before its backoff has passed.
    expect(await freight.app.approvals.askDue()).toBe(0);
    expect(preFinishesOf('scan.pdf')).toHaveLength(1);

    // A day later (past UPLOAD_EXPIRY), with the receiver still silent: the janitor leaves it alone.
    moved += 25 * 3_600_000;
    await freight.app.janitor.run();
    expect((await api(user, result.id)).status).toBe('awaiting_approval');

    // The receiver answers now: the next ask (the server's own loop, or this) completes it.
    answerPreFinish(receiver, 'scan.pdf', () => ({ status: 204 }));
    await freight.app.approvals.askDue();
    const done = await eventually(async () => {
      const upload = await api(user, result.id);
      return upload.status === 'completed' ? upload : undefined;
    });
    expect(done).toMatchObject({ error: null, sha256: sha256(data) });
    expect(preFinishesOf('scan.pdf').length).toBeGreaterThanOrEqual(2);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, done.storageKey)).toBe(sha256(data));
    expect((await head(user, result.id)).headers.get('freight-upload-status')).toBeNull();
    const events = await eventsOf(result.id, 2);
    expect(events.map((request) => request.json.event)).toEqual(['upload.created', 'upload.completed']);
  });
});

describe("Uppy's S3 multipart path through the gate", () => {
  test('approved: complete answers 200 with the location, as before', async () => {
    const user = uniqueUser('uppy-ok');
    const data = randomData(6 * MiB);
    answerPreFinish(receiver, 'u-ok.pdf', () => ({ status: 200 }));
    const upload = await uppyUpload(user, data, 'u-ok.pdf');
    const completed = await upload.complete();
    expect(completed.status).toBe(200);
    expect(await completed.json()).toEqual({
      location: expect.stringContaining(upload.key),
      key: upload.key,
      bucket: ctx.bucket.bucket,
    });
    expect(preFinishesOf('u-ok.pdf')[0]!.json.upload).toMatchObject({
      id: upload.id,
      protocol: 'direct',
      status: 'awaiting_approval',
      bytesReceived: data.length,
    });
    expect((await api(user, upload.id)).status).toBe('completed');
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, upload.key)).toBe(sha256(data));
  });

  test('refused: complete answers the receiver status (Uppy fails the file) with its message; the object is gone', async () => {
    const user = uniqueUser('uppy-no');
    answerPreFinish(receiver, 'u-no.pdf', () => ({ status: 403, contentType: 'text/plain', body: 'not a PDF' }));
    const upload = await uppyUpload(user, randomData(5 * MiB + 10), 'u-no.pdf');
    const completed = await upload.complete();
    expect(completed.status).toBe(403);
    expect(completed.ok).toBe(false);
    expect(await completed.json()).toEqual({ error: 'ERR_UPLOAD_REJECTED', message: 'not a PDF' });
    expect(await api(user, upload.id)).toMatchObject({
      status: 'rejected',
      error: 'the pre-finish check refused it: not a PDF',
    });
    expect(await objectExists(upload.key)).toBe(false);
    // Uppy's retry lists the parts first: the upload is gone.
    expect((await upload.list()).status).toBe(410);
  });

  test('no answer: complete answers 202 with the location (Uppy: done), the API shows awaiting_approval; approved later', async () => {
    const user = uniqueUser('uppy-wait');
    const data = randomData(5 * MiB + 1);
    answerPreFinish(receiver, 'u-wait.pdf', () => ({ status: 503, body: 'scanner busy' }));
    const upload = await uppyUpload(user, data, 'u-wait.pdf');
    const completed = await upload.complete();
    expect(completed.status).toBe(202);
    expect(completed.ok).toBe(true);
    expect(await completed.json()).toEqual({
      location: expect.stringContaining(upload.key),
      key: upload.key,
      bucket: ctx.bucket.bucket,
    });
    const waiting = await api(user, upload.id);
    expect(waiting).toMatchObject({ status: 'awaiting_approval', expiresAt: null });
    expect(waiting.error).toMatch(/^awaiting approval: the pre-finish check answered 503; asked again at /);
    // A second complete (a client that retries) is answered the same, without asking again; the parts still list.
    expect((await upload.complete()).status).toBe(202);
    expect((await upload.list()).status).toBe(200);
    const direct = await fetch(`${freight.url}/api/multipart/${upload.id}/complete`, {
      method: 'POST',
      headers: { ...(await auth(user)), 'content-type': 'application/json' },
      body: JSON.stringify({ parts: upload.parts }),
    });
    expect(direct.status).toBe(202);
    expect(await direct.json()).toMatchObject({ id: upload.id, status: 'awaiting_approval', size: data.length });
    expect(preFinishesOf('u-wait.pdf')).toHaveLength(1);

    answerPreFinish(receiver, 'u-wait.pdf', () => ({ status: 200 }));
    moved += 3_600_000;
    await freight.app.approvals.askDue();
    await eventually(async () => ((await api(user, upload.id)).status === 'completed' ? true : undefined));
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, upload.key)).toBe(sha256(data));
    const again = await fetch(`${freight.url}/api/multipart/${upload.id}/complete`, {
      method: 'POST',
      headers: { ...(await auth(user)), 'content-type': 'application/json' },
      body: JSON.stringify({ parts: upload.parts }),
    });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ status: 'completed' });
  });

  test('no answer, then refused on a later ask: the object goes, the upload is rejected (the client learns it from the API)', async () => {
    const user = uniqueUser('uppy-late-no');
    answerPreFinish(receiver, 'u-late.pdf', () => 'hang');
    const upload = await uppyUpload(user, randomData(5 * MiB), 'u-late.pdf');
    expect((await upload.complete()).status).toBe(202);
    answerPreFinish(receiver, 'u-late.pdf', () => ({ status: 451, body: 'unavailable for legal reasons' }));
    moved += 3_600_000;
    await freight.app.approvals.askDue();
    const rejected = await eventually(async () => {
      const current = await api(user, upload.id);
      return current.status === 'rejected' ? current : undefined;
    });
    expect(rejected.error).toBe('the pre-finish check refused it: unavailable for legal reasons');
    expect(await objectExists(upload.key)).toBe(false);
    const events = await eventsOf(upload.id, 2);
    expect(events.map((request) => [request.json.event, request.json.upload.status])).toEqual([
      ['upload.created', 'pending'],
      ['upload.failed', 'rejected'],
    ]);
  });
});

describe('tus concatenation through the gate', () => {
  test('the final upload is asked (its partials are not: they are pieces of a file); awaiting, it shows its offset; a tus DELETE ends it and removes its object', async () => {
    const user = uniqueUser('joined');
    const headers = await auth(user);
    const pieces = [randomData(1000), randomData(2000)];
    const partials: string[] = [];
    for (const piece of pieces) {
      const partial = await createRawUpload(freight.url, headers, piece, {
        'Upload-Length': String(piece.length),
        'Upload-Concat': 'partial',
      });
      expect((await partial.patch(0, piece.length)).status).toBe(204);
      expect((await api(user, partial.id)).status).toBe('completed');
      partials.push(partial.id);
    }
    answerPreFinish(receiver, 'joined.bin', () => 'hang');
    const created = await fetch(`${freight.url}/files/`, {
      method: 'POST',
      headers: {
        ...headers,
        'Tus-Resumable': '1.0.0',
        'Upload-Metadata': `filename ${Buffer.from('joined.bin').toString('base64')}`,
        'Upload-Concat': `final;${partials.map((id) => `${freight.url}/files/${id}`).join(' ')}`,
      },
    });
    expect(created.status).toBe(201);
    const id = uploadIdOf(created.headers.get('location')!);
    const waiting = await eventually(async () => {
      const upload = await api(user, id);
      return upload.status === 'awaiting_approval' ? upload : undefined;
    });
    expect(waiting).toMatchObject({ totalSize: 3000, sha256: sha256(Buffer.concat(pieces)) });
    const asked = receiver.received.filter((request) => request.json.event === 'upload.pre-finish');
    expect(asked.filter((request) => request.json.upload.id === id)).toHaveLength(1);
    expect(asked.filter((request) => partials.includes(request.json.upload.id))).toEqual([]);
    const resume = await head(user, id);
    expect(resume.headers.get('upload-offset')).toBe('3000');
    expect(resume.headers.get('freight-upload-status')).toBe('awaiting_approval');
    expect(await objectExists(waiting.storageKey)).toBe(true);

    const deleted = await fetch(`${freight.url}/files/${id}`, {
      method: 'DELETE',
      headers: { ...headers, 'Tus-Resumable': '1.0.0' },
    });
    expect(deleted.status).toBe(204);
    expect((await api(user, id)).status).toBe('aborted');
    expect(await objectExists(waiting.storageKey)).toBe(false);
    // Nothing is left to ask about.
    moved += 3_600_000;
    expect(await freight.app.approvals.askDue()).toBe(0);
  });
});
