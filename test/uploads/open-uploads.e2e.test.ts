/**
 * USER_MAX_OPEN_UPLOADS: how many open uploads (pending, uploading, failed) one user may have, counted over both
 * paths, checked where both create (the upload-state service).
 */
import { describe, expect, test } from 'vitest';
import { freightOnS3, randomData, tokenFor, uniqueUser } from '../helpers/harness.js';
import { uploadIdOf } from '../helpers/tus-client.js';

const ctx = freightOnS3('freight-open-uploads', { USER_MAX_OPEN_UPLOADS: '3' });

const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });

async function createTus(user: string) {
  const res = await fetch(`${ctx.freight.url}/files/`, {
    method: 'POST',
    headers: { ...(await auth(user)), 'Tus-Resumable': '1.0.0', 'Upload-Length': '100' },
  });
  return {
    status: res.status,
    id: res.status === 201 ? uploadIdOf(res.headers.get('location')!) : undefined,
    text: await res.text(),
  };
}

async function postJson(user: string, path: string, body: unknown) {
  const res = await fetch(`${ctx.freight.url}${path}`, {
    method: 'POST',
    headers: { ...(await auth(user)), 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const createDirect = (user: string) => postJson(user, '/api/multipart', { filename: 'a.bin', size: 100 });
const createCompanion = (user: string) =>
  postJson(user, '/s3/multipart', { filename: 'a.bin', type: 'application/octet-stream' });

const openRows = async (user: string) =>
  (
    await ctx.sql`select count(*)::int as n from file_uploads where user_id = ${user} and status in ('pending', 'uploading', 'failed')`
  )[0]!.n;

const TOO_MANY = /too many open uploads: you have 3 and this server allows 3 per user; complete or abort one/;

describe('a limit on open uploads per user', () => {
  test('the 4th open upload is 429 on tus, direct and Companion, saying why; another user still gets 201', async () => {
    const user = uniqueUser('busy');
    expect((await createTus(user)).status).toBe(201);
    expect((await createDirect(user)).status).toBe(201);
    expect((await createCompanion(user)).status).toBe(200);

    const tus = await createTus(user);
    expect(tus.status).toBe(429);
    expect(tus.text).toMatch(TOO_MANY);
    for (const refused of [await createDirect(user), await createCompanion(user)]) {
      expect(refused).toEqual({
        status: 429,
        body: { error: 'ERR_TOO_MANY_UPLOADS', message: expect.stringMatching(TOO_MANY) },
      });
    }
    expect(await openRows(user)).toBe(3);

    const other = uniqueUser('calm');
    expect((await createTus(other)).status).toBe(201);
    expect((await createDirect(other)).status).toBe(201);
  });

  test('completing or aborting an upload frees its slot', async () => {
    const user = uniqueUser('juggler');
    const direct = await createDirect(user);
    const tus = await createTus(user);
    expect((await createTus(user)).status).toBe(201);
    expect((await createDirect(user)).status).toBe(429);

    const deleted = await fetch(`${ctx.freight.url}/files/${tus.id}`, {
      method: 'DELETE',
      headers: { ...(await auth(user)), 'Tus-Resumable': '1.0.0' },
    });
    expect(deleted.status).toBe(204);
    expect((await createDirect(user)).status).toBe(201);
    expect((await createTus(user)).status).toBe(429);

    const [part] = direct.body.parts;
    const put = await fetch(part.url, { method: 'PUT', body: randomData(100) });
    const completed = await postJson(user, `/api/multipart/${direct.body.id}/complete`, {
      parts: [{ partNumber: 1, etag: put.headers.get('etag') }],
    });
    expect(completed.status).toBe(200);
    expect((await createTus(user)).status).toBe(201);
    expect((await createTus(user)).status).toBe(429);
  });

  test('of many concurrent creates by one user exactly as many as the limit succeed', async () => {
    const user = uniqueUser('burst');
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? createDirect(user) : createTus(user))),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(3);
    expect(statuses.filter((status) => status === 429)).toHaveLength(9);
    expect(await openRows(user)).toBe(3);
  });
});
