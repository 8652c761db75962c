/**
 * What a tus client sees when it gets something wrong: authentication, ownership and the spec-exact errors.
 * Every error answer carries a body that says what was wrong.
 */
import { MemoryLocker } from '../../src/tus/lockers/memory-locker.js';
import { describe, expect, test } from 'vitest';
import { freightOnS3, MiB, randomData, tokenFor, uniqueUser } from '../helpers/harness.js';

/** The server's locker, so a test can hold an upload's lock the way a stuck request would. */
const locker = new MemoryLocker({ acquireTimeoutMs: 500 });
const ctx = freightOnS3('freight-tus-errors', { MAX_UPLOAD_SIZE: '100MiB' }, { locker });

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTETS = { 'Content-Type': 'application/offset+octet-stream' };
const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });

async function create(user: string, length = 10 * MiB): Promise<string> {
  const res = await fetch(`${ctx.freight.url}/files/`, {
    method: 'POST',
    headers: { ...TUS, ...(await auth(user)), 'Upload-Length': String(length) },
  });
  expect(res.status).toBe(201);
  return res.headers.get('location')!;
}

describe('authentication', () => {
  test('a request without a token is refused with 401 and a reason', async () => {
    const res = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': '10' },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await res.text()).toMatch(/missing Authorization header/);
  });

  test.each([
    [
      'a token signed with another secret',
      () => tokenFor('mallory', { secret: 'some-other-secret-some-other-secret' }),
      /invalid token/,
    ],
    ['an expired token', () => tokenFor('mallory', { expiresIn: '-1m' }), /token expired/],
    ['a token that is not a JWT', async () => 'not-a-jwt', /invalid token/],
  ])('%s is refused with 401', async (_name, makeToken, reason) => {
    const res = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': '10', Authorization: `Bearer ${await makeToken()}` },
    });
    expect(res.status).toBe(401);
    expect(await res.text()).toMatch(reason);
  });

  test("another user's upload is a 404 on HEAD, PATCH, DELETE and GET", async () => {
    const owner = uniqueUser('owner');
    const url = await create(owner);
    const stranger = await auth(uniqueUser('stranger'));
    const attempts: Array<[string, Record<string, string>]> = [
      ['HEAD', { ...TUS }],
      ['PATCH', { ...TUS, ...OCTETS, 'Upload-Offset': '0' }],
      ['DELETE', { ...TUS }],
      ['GET', {}],
    ];
    for (const [method, headers] of attempts) {
      const res = await fetch(url, {
        method,
        headers: { ...headers, ...stranger },
        body: method === 'PATCH' ? 'x' : undefined,
      });
      expect(res.status, method).toBe(404);
    }
    // and the owner still has it, untouched
    const head = await fetch(url, { method: 'HEAD', headers: { ...TUS, ...(await auth(owner)) } });
    expect(head.status).toBe(200);
    expect(head.headers.get('upload-offset')).toBe('0');
  });

  test('a direct upload is no tus upload: HEAD, PATCH, DELETE and GET under /files are 404 and leave it untouched', async () => {
    const headers = await auth(uniqueUser('direct-owner'));
    const created = await fetch(`${ctx.freight.url}/api/multipart`, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ filename: 'direct.bin', size: 6 * MiB, parts: [] }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const attempts: Array<[string, Record<string, string>]> = [
      ['HEAD', { ...TUS }],
      ['PATCH', { ...TUS, ...OCTETS, 'Upload-Offset': '0' }],
      ['DELETE', { ...TUS }],
      ['GET', {}],
    ];
    for (const [method, extra] of attempts) {
      const res = await fetch(`${ctx.freight.url}/files/${id}`, {
        method,
        headers: { ...extra, ...headers },
        body: method === 'PATCH' ? 'x' : undefined,
      });
      expect(res.status, method).toBe(404);
    }
    const parts = await fetch(`${ctx.freight.url}/api/multipart/${id}/parts`, { headers });
    expect(parts.status).toBe(200);
    expect(await parts.json()).toMatchObject({ status: 'pending' });
  });

  test('a preflight for PATCH with Authorization is answered by tus with every method and header allowed', async () => {
    const res = await fetch(`${ctx.freight.url}/files/some-id`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://app.example.com',
        'Access-Control-Request-Method': 'PATCH',
        'Access-Control-Request-Headers': 'authorization,tus-resumable,upload-offset,content-type',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toMatch(/PATCH/);
    expect(res.headers.get('access-control-allow-methods')).toMatch(/DELETE/);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Upload-Offset/);
  });

  test('responses expose the tus headers and Location to browsers', async () => {
    const res = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, ...(await auth(uniqueUser('web'))), 'Upload-Length': '10', Origin: 'https://app.example.com' },
    });
    const exposed = res.headers.get('access-control-expose-headers') ?? '';
    for (const name of ['Location', 'Upload-Offset', 'Upload-Length', 'Tus-Resumable', 'Upload-Expires']) {
      expect(exposed).toContain(name);
    }
    expect(res.headers.get('upload-expires')).toBeTruthy();
  });
});

describe('spec-exact errors', () => {
  test('an unsupported Tus-Resumable is 412 with Tus-Version', async () => {
    const res = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...(await auth(uniqueUser('u'))), 'Tus-Resumable': '0.2.2', 'Upload-Length': '10' },
    });
    expect(res.status).toBe(412);
    expect(res.headers.get('tus-version')).toBe('1.0.0');
    expect(await res.text()).toMatch(/unsupported Tus-Resumable "0.2.2"/);
  });

  test('a missing Tus-Resumable is 412 too', async () => {
    const res = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...(await auth(uniqueUser('u'))), 'Upload-Length': '10' },
    });
    expect(res.status).toBe(412);
    expect(res.headers.get('tus-version')).toBe('1.0.0');
  });

  test('PATCH with the wrong Content-Type is 415', async () => {
    const user = uniqueUser('u');
    const url = await create(user);
    const res = await fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, ...(await auth(user)), 'Upload-Offset': '0', 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(415);
    expect(await res.text()).toMatch(/application\/offset\+octet-stream/);
  });

  test('PATCH without Upload-Offset is 400', async () => {
    const user = uniqueUser('u');
    const url = await create(user);
    const res = await fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, ...OCTETS, ...(await auth(user)) },
      body: 'abc',
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/Upload-Offset header required/);
  });

  test('PATCH at the wrong offset is 409 and changes nothing', async () => {
    const user = uniqueUser('u');
    const url = await create(user, 100);
    const res = await fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, ...OCTETS, ...(await auth(user)), 'Upload-Offset': '50' },
      body: randomData(10),
    });
    expect(res.status).toBe(409);
    expect(await res.text()).toMatch(/offset/i);
    const head = await fetch(url, { method: 'HEAD', headers: { ...TUS, ...(await auth(user)) } });
    expect(head.headers.get('upload-offset')).toBe('0');
  });

  test.each([
    [{ 'Upload-Length': 'ten' }, 400, /Upload-Length must be a non-negative integer/],
    [{ 'Upload-Length': '-5' }, 400, /non-negative integer/],
    [{}, 400, /Upload-Length or Upload-Defer-Length/],
    [{ 'Upload-Length': '10', 'Upload-Defer-Length': '1' }, 400, /not both/],
    [{ 'Upload-Defer-Length': '2' }, 400, /Upload-Defer-Length must be 1/],
    [{ 'Upload-Length': '10', 'Upload-Metadata': 'filename not*base64' }, 400, /not Base64/],
    [{ 'Upload-Length': '10', 'Upload-Metadata': 'a YQ==,a Yg==' }, 400, /appears twice/],
    [{ 'Upload-Length': String(100 * MiB + 1) }, 413, /exceeds this server's maximum/],
  ])('POST with %o is %i', async (headers, status, message) => {
    const res = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...TUS, ...(await auth(uniqueUser('u'))), ...headers },
    });
    expect(res.status).toBe(status);
    expect(await res.text()).toMatch(message);
  });

  test('a body beyond the declared length is 413', async () => {
    const user = uniqueUser('u');
    const url = await create(user, 10);
    const res = await fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, ...OCTETS, ...(await auth(user)), 'Upload-Offset': '0' },
      body: randomData(20),
    });
    expect(res.status).toBe(413);
  });

  test('an upload whose lock is held too long answers 423 Locked, not 500', async () => {
    const user = uniqueUser('u');
    const url = await create(user);
    const id = new URL(url).pathname.split('/').pop()!;
    const stuck = locker.newLock(id);
    await stuck.lock(new AbortController().signal, async () => {
      /* a holder that never lets go */
    });
    try {
      const res = await fetch(url, {
        method: 'PATCH',
        headers: { ...TUS, ...OCTETS, ...(await auth(user)), 'Upload-Offset': '0' },
        body: randomData(10),
      });
      expect(res.status).toBe(423);
      expect(await res.text()).toMatch(/locked/);
    } finally {
      await stuck.unlock();
    }
  });

  test('an id that is not an upload is 404, whatever it looks like', async () => {
    const headers = { ...TUS, ...(await auth(uniqueUser('u'))) };
    for (const id of ['nope', '00000000-0000-0000-0000-000000000000', "1'; drop table file_uploads;--"]) {
      const res = await fetch(`${ctx.freight.url}/files/${encodeURIComponent(id)}`, { method: 'HEAD', headers });
      expect(res.status, id).toBe(404);
    }
  });

  test('a URL that is not valid percent-encoding is 400 and says so', async () => {
    const res = await fetch(`${ctx.freight.url}/files/%E0%A4%A`, {
      method: 'PATCH',
      headers: { ...TUS, ...OCTETS, ...(await auth(uniqueUser('u'))), 'Upload-Offset': '0' },
      body: 'x',
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/url/i);
  });
});
