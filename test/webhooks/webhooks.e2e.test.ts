/**
 * Webhooks end to end: real PostgreSQL (a database of this file's own: the deliverer sends every event of its
 * database), a real S3 gateway, and a local receiver. Events arrive signed, one per state change, with the upload
 * as the API shows it; a receiver that fails gets the event again; events outlive a restart of Freight; and the
 * pre-create check's answer becomes the client's (its 4xx and message, or 503 when it cannot decide).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { verifySignature } from '../../src/webhooks/signature.js';
import {
  eventually,
  randomData,
  serviceEnv,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
  isolatedServices,
} from '../helpers/harness.js';
import { startTusUpload, uploadIdOf } from '../helpers/tus-client.js';
import { receiverForFile, type Received } from './receiver.js';

const ctx = isolatedServices('freight-webhooks');
const receiver = receiverForFile();

const SECRET = 'webhook-test-secret-0123456789abcdef';

/** A Freight on this file's database and bucket, sending webhooks to the receiver. */
const freightWithWebhooks = (extra: Record<string, string> = {}) =>
  startFreight(
    serviceEnv(ctx.bucket.bucket, {
      DATABASE_URL: ctx.database.url,
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_TIMEOUT: '2s',
      JANITOR_INTERVAL: '0',
      ...extra,
    }),
  );

const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });
const eventsOf = (id: string) =>
  receiver.received.filter((request) => request.json.event !== 'upload.pre-create' && request.json.upload.id === id);
/** Waits until every event of the upload is delivered, then returns what the receiver got for it. */
async function deliveredFor(id: string, count: number): Promise<Received[]> {
  await eventually(async () => {
    const [row] =
      await ctx.sql`select count(*)::int as n, count(delivered_at)::int as delivered from webhook_outbox where upload_id = ${id}`;
    return row!.n === count && row!.delivered === count ? true : undefined;
  }, 30_000);
  return eventsOf(id);
}

async function postJson(freight: RunningFreight, user: string, path: string, body: unknown) {
  return fetch(`${freight.url}${path}`, {
    method: 'POST',
    headers: { ...(await auth(user)), 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('events', () => {
  let freight: RunningFreight;
  beforeAll(async () => {
    freight = await freightWithWebhooks();
  });
  afterAll(async () => {
    await freight?.close();
  });

  test('arrive signed, one per state change, each with the upload as GET /api/uploads/:id shows it', async () => {
    const user = uniqueUser('hooked');
    // tus: created, completed
    const url = await startTusUpload(randomData(1000), {
      endpoint: `${freight.url}/files/`,
      headers: await auth(user),
      metadata: { filename: 'a.txt' },
    }).done;
    const tusId = uploadIdOf(url);
    // direct: created, aborted
    const created = (await (
      await postJson(freight, user, '/api/multipart', { filename: 'd.bin', size: 100 })
    ).json()) as { id: string };
    expect(
      (await fetch(`${freight.url}/api/multipart/${created.id}`, { method: 'DELETE', headers: await auth(user) }))
        .status,
    ).toBe(204);
    // expired by the janitor
    const stale = (await (
      await postJson(freight, user, '/api/multipart', { filename: 's.bin', size: 100 })
    ).json()) as { id: string };
    await ctx.sql`update file_uploads set expires_at = now() - interval '1 minute' where id = ${stale.id}`;
    await freight.app.janitor.run();

    const expected: Array<[string, string[]]> = [
      [tusId, ['upload.created', 'upload.completed']],
      [created.id, ['upload.created', 'upload.aborted']],
      [stale.id, ['upload.created', 'upload.expired']],
    ];
    for (const [id, events] of expected) {
      // They may arrive in any order (sent concurrently); by id they are in the order of the changes.
      const received = (await deliveredFor(id, events.length)).sort((a, b) => a.json.id! - b.json.id!);
      expect(received.map((request) => request.json.event)).toEqual(events);
      for (const request of received) {
        expect(verifySignature(SECRET, request.raw, String(request.headers['freight-signature']))).toBe(true);
        expect(
          verifySignature(
            'another-secret-0123456789abcdefghij',
            request.raw,
            String(request.headers['freight-signature']),
          ),
        ).toBe(false);
        expect(request.headers['freight-event']).toBe(request.json.event);
        expect(request.headers['content-type']).toBe('application/json');
        expect(Object.keys(request.json)).toEqual(['event', 'upload', 'occurredAt', 'id']);
        expect(Date.parse(request.json.occurredAt!)).toBeGreaterThan(Date.now() - 120_000);
        expect(request.json.upload.status).toBe(
          {
            'upload.created': 'pending',
            'upload.completed': 'completed',
            'upload.aborted': 'aborted',
            'upload.expired': 'expired',
          }[request.json.event],
        );
      }
    }

    // The last event of each upload shows it exactly as the API does now (the view, the parts counted).
    for (const [id] of expected) {
      const api = await (await fetch(`${freight.url}/api/uploads/${id}`, { headers: await auth(user) })).json();
      const last = eventsOf(id).sort((a, b) => b.json.id! - a.json.id!)[0]!;
      expect(last.json.upload).toEqual(api);
    }
    expect(eventsOf(tusId).find((request) => request.json.event === 'upload.completed')!.json.upload).toMatchObject({
      filename: 'a.txt',
      totalSize: 1000,
      bytesReceived: 1000,
      protocol: 'tus',
      partsCount: 1,
    });
  });

  test('a receiver answering 500 gets the event again (the same event, the same id), until it takes it', async () => {
    let refused = 0;
    receiver.answer = (request) =>
      request.json.event === 'upload.created' && refused++ === 0 ? { status: 500, body: 'oops' } : { status: 200 };
    const user = uniqueUser('flaky');
    const created = (await (
      await postJson(freight, user, '/api/multipart', { filename: 'f.bin', size: 100 })
    ).json()) as { id: string };

    const [first, second] = await deliveredFor(created.id, 1);
    expect(second).toBeDefined();
    expect(second!.raw).toBe(first!.raw);
    expect(verifySignature(SECRET, second!.raw, String(second!.headers['freight-signature']))).toBe(true);
    const [row] = await ctx.sql`select attempts, last_error from webhook_outbox where upload_id = ${created.id}`;
    expect(row).toEqual({ attempts: 2, last_error: null });
  });
});

describe('across a restart', () => {
  test('events written while the receiver is down are delivered by the next Freight on the same database', async () => {
    const first = await freightWithWebhooks();
    await receiver.down();
    let id: string;
    try {
      const user = uniqueUser('patient');
      const res = await fetch(`${first.url}/files/`, {
        method: 'POST',
        headers: { ...(await auth(user)), 'Tus-Resumable': '1.0.0', 'Upload-Length': '10' },
      });
      expect(res.status).toBe(201);
      id = uploadIdOf(res.headers.get('location')!);
      // It was tried, and failed.
      const failed = await eventually(async () => {
        const [row] =
          await ctx.sql`select attempts, last_error, delivered_at from webhook_outbox where upload_id = ${id}`;
        return row && row.attempts >= 1 && row.last_error ? row : undefined;
      });
      expect(failed.last_error).toMatch(/unreachable/);
      expect(failed.delivered_at).toBeNull();
    } finally {
      await first.close();
    }

    await receiver.up();
    const second = await freightWithWebhooks();
    try {
      const [event] = await deliveredFor(id, 1);
      expect(event!.json).toMatchObject({ event: 'upload.created', upload: { id, status: 'pending', totalSize: 10 } });
      expect(verifySignature(SECRET, event!.raw, String(event!.headers['freight-signature']))).toBe(true);
    } finally {
      await second.close();
    }
  });
});

describe('the pre-create check', () => {
  let freight: RunningFreight;
  beforeAll(async () => {
    freight = await freightWithWebhooks({ WEBHOOK_PRE_CREATE: 'true', WEBHOOK_TIMEOUT: '1s' });
  });
  afterAll(async () => {
    await freight?.close();
  });

  const preCreates = () => receiver.received.filter((request) => request.json.event === 'upload.pre-create');
  const rowsOf = async (user: string) =>
    (await ctx.sql`select count(*)::int as n from file_uploads where user_id = ${user}`)[0]!.n;
  const tusUpload = async (user: string) => {
    try {
      await startTusUpload(randomData(10), {
        endpoint: `${freight.url}/files/`,
        headers: await auth(user),
        metadata: { filename: 'x.bin' },
      }).done;
      return undefined;
    } catch (error) {
      const response = (
        error as {
          originalResponse?: { getStatus(): number; getBody(): string; getHeader(name: string): string | undefined };
        }
      ).originalResponse;
      return (
        response && {
          status: response.getStatus(),
          body: response.getBody(),
          retryAfter: response.getHeader('Retry-After'),
        }
      );
    }
  };

  test('is asked, signed, about the upload as its client described it; a 2xx lets it through', async () => {
    const user = uniqueUser('welcome');
    const res = await postJson(freight, user, '/api/multipart', {
      filename: 'ok.bin',
      size: 100,
      mimeType: 'text/plain',
      metadata: { project: 'p1' },
    });
    expect(res.status).toBe(201);
    const asked = preCreates().find((request) => request.json.upload.userId === user)!;
    const created = (await res.json()) as { id: string };
    expect(asked.json).toEqual({
      event: 'upload.pre-create',
      upload: {
        id: created.id,
        userId: user,
        filename: 'ok.bin',
        size: 100,
        mimeType: 'text/plain',
        protocol: 'direct',
        metadata: { project: 'p1' },
      },
    });
    expect(verifySignature(SECRET, asked.raw, String(asked.headers['freight-signature']))).toBe(true);
    expect(await tusUpload(user)).toBeUndefined();
    expect(await rowsOf(user)).toBe(2);
  });

  test("a 4xx refuses the upload: its status and message reach a tus client, a direct client and Companion's; nothing is created", async () => {
    receiver.answer = (request) =>
      request.json.event !== 'upload.pre-create'
        ? { status: 204 }
        : request.json.upload.protocol === 'tus'
          ? {
              status: 403,
              contentType: 'application/json',
              body: JSON.stringify({ message: 'quota exceeded for this month' }),
            }
          : { status: 422, contentType: 'text/plain', body: 'files named\r\nlike this are not allowed' };
    const user = uniqueUser('refused');

    const tus = await tusUpload(user);
    expect(tus).toMatchObject({ status: 403, body: 'ERR_UPLOAD_REJECTED: quota exceeded for this month\n' });

    const direct = await postJson(freight, user, '/api/multipart', { filename: 'no.bin', size: 100 });
    expect(direct.status).toBe(422);
    expect(await direct.json()).toEqual({
      error: 'ERR_UPLOAD_REJECTED',
      message: 'files named like this are not allowed',
    });

    const companion = await postJson(freight, user, '/s3/multipart', {
      filename: 'no.bin',
      type: 'application/octet-stream',
    });
    expect(companion.status).toBe(422);
    expect(await companion.json()).toEqual({
      error: 'ERR_UPLOAD_REJECTED',
      message: 'files named like this are not allowed',
    });
    expect(await rowsOf(user)).toBe(0);
  });

  test('no answer within WEBHOOK_TIMEOUT, or a 5xx: 503 with Retry-After (the client retries); nothing is created', async () => {
    const user = uniqueUser('waiting');
    receiver.answer = (request) => (request.json.event === 'upload.pre-create' ? 'hang' : { status: 204 });
    const started = Date.now();
    const tus = await tusUpload(user);
    expect(tus).toMatchObject({ status: 503, retryAfter: '5' });
    expect(tus!.body).toMatch(
      /^ERR_WEBHOOK_UNAVAILABLE: the pre-create check did not answer \(no answer within 1 s\); retry later/,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const direct = await postJson(freight, user, '/api/multipart', { filename: 'later.bin', size: 100 });
    expect(direct.status).toBe(503);
    expect(direct.headers.get('retry-after')).toBe('5');
    expect(((await direct.json()) as { error: string }).error).toBe('ERR_WEBHOOK_UNAVAILABLE');

    receiver.answer = (request) =>
      request.json.event === 'upload.pre-create' ? { status: 502, body: 'bad gateway' } : { status: 204 };
    const failing = await postJson(freight, user, '/api/multipart', { filename: 'later.bin', size: 100 });
    expect(failing.status).toBe(503);
    expect(await failing.json()).toEqual({
      error: 'ERR_WEBHOOK_UNAVAILABLE',
      message: 'the pre-create check failed (it answered 502); retry later',
    });
    expect(await rowsOf(user)).toBe(0);
  });
});
