/**
 * One upload lifecycle, run against both storage set-ups Freight ships: S3 + PostgreSQL, and the embedded
 * defaults (local files + PGlite, what `npm start` uses on a bare machine). Only what a client can observe is
 * asserted: the tus answers, the bytes read back, and the state in GET /api/uploads/:id.
 */
import http from 'node:http';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  JWT_SECRET,
  errorCodeOf,
  MiB,
  createTestBucket,
  eventually,
  randomData,
  serviceEnv,
  sha256,
  startFreight,
  testS3Client,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../helpers/harness.js';
import { stalledPatch, startTusUpload, uploadIdOf } from '../helpers/tus-client.js';

interface Setup {
  start(): Promise<RunningFreight>;
  stop(): Promise<void>;
}

function s3Setup(): Setup {
  let s3: S3Client;
  let bucket: { drop(): Promise<void> };
  return {
    async start() {
      s3 = testS3Client();
      const created = await createTestBucket(s3, 'freight-lifecycle');
      bucket = created;
      return startFreight(serviceEnv(created.bucket, { S3_PART_SIZE: '5MiB', UPLOAD_STALL_TIMEOUT: '2s' }));
    },
    async stop() {
      await bucket?.drop();
      s3?.destroy();
    },
  };
}

function embeddedSetup(): Setup {
  return {
    start: () => startFreight({ AUTH_JWT_SECRET: JWT_SECRET, LOG_LEVEL: 'silent', UPLOAD_STALL_TIMEOUT: '2s' }),
    stop: async () => {},
  };
}

describe.each([
  ['S3 (Ceph RGW) and PostgreSQL', s3Setup],
  ['embedded defaults (local files and PGlite)', embeddedSetup],
])('upload lifecycle on %s', (_name, makeSetup) => {
  const setup = makeSetup();
  let freight: RunningFreight;

  beforeAll(async () => {
    freight = await setup.start();
  });
  afterAll(async () => {
    await freight?.close();
    await setup.stop();
  });

  async function api(user: string, id: string) {
    const res = await fetch(`${freight.url}/api/uploads/${id}`, {
      headers: { Authorization: `Bearer ${await tokenFor(user)}` },
    });
    expect(res.status).toBe(200);
    return res.json() as Promise<Record<string, unknown>>;
  }

  async function download(user: string, url: string): Promise<Buffer> {
    const res = await fetch(url, { headers: { Authorization: `Bearer ${await tokenFor(user)}` } });
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  }

  test('an upload in several PATCHes completes and reads back byte-identical', async () => {
    const user = uniqueUser('ann');
    const data = randomData(12 * MiB + 321);
    const run = startTusUpload(data, {
      endpoint: `${freight.url}/files/`,
      headers: { Authorization: `Bearer ${await tokenFor(user)}` },
      chunkSize: 5 * MiB,
      metadata: { filename: 'notes.txt', filetype: 'text/plain' },
    });
    const url = await run.done;
    expect(run.requests.filter((r) => r.method === 'PATCH')).toHaveLength(3);

    const state = await api(user, uploadIdOf(url));
    expect(state).toMatchObject({
      status: 'completed',
      protocol: 'tus',
      filename: 'notes.txt',
      mimeType: 'text/plain',
      totalSize: data.length,
      bytesReceived: data.length,
    });
    expect(state.completedAt).toEqual(expect.any(String));
    expect(sha256(await download(user, url))).toBe(sha256(data));
  });

  test('a cut upload resumes from the offset the server reports', async () => {
    const user = uniqueUser('ben');
    const token = await tokenFor(user);
    const headers = { Authorization: `Bearer ${token}` };
    const data = randomData(16 * MiB);
    const created = await fetch(`${freight.url}/files/`, {
      method: 'POST',
      headers: { ...headers, 'Tus-Resumable': '1.0.0', 'Upload-Length': String(data.length) },
    });
    const url = created.headers.get('location')!;
    const id = uploadIdOf(url);

    // 6 MiB arrive, then the link goes dead: once the body has stalled for 2 s the server keeps what arrived.
    const patch = stalledPatch(url, headers, data, 0, 6 * MiB);
    await eventually(async () => ((await api(user, id)).bytesReceived === 6 * MiB ? true : undefined));
    patch.cut();
    await patch.settled;

    const head = await eventually(async () => {
      const res = await fetch(url, { method: 'HEAD', headers: { ...headers, 'Tus-Resumable': '1.0.0' } });
      return res.status === 200 ? res : undefined;
    });
    expect(Number(head.headers.get('upload-offset'))).toBe(6 * MiB);
    expect(await api(user, id)).toMatchObject({ status: 'uploading', bytesReceived: 6 * MiB });

    const second = startTusUpload(data, { uploadUrl: url, headers });
    await second.done;
    expect(second.requests.find((r) => r.method === 'PATCH')?.uploadOffset).toBe(String(6 * MiB));
    expect((await api(user, id)).status).toBe('completed');
    expect(sha256(await download(user, url))).toBe(sha256(data));
  });

  test("resume checks keep a Node client's connection: Content-Length is what a GET would send", async () => {
    const user = uniqueUser('cal');
    const headers = { Authorization: `Bearer ${await tokenFor(user)}`, 'Tus-Resumable': '1.0.0' };
    const data = randomData(1000);
    const created = await fetch(`${freight.url}/files/`, {
      method: 'POST',
      headers: { ...headers, 'Upload-Length': String(data.length) },
    });
    const url = created.headers.get('location')!;
    // node:http is what tus-js-client uses on Node: it keeps a connection after a HEAD answer only if the answer
    // says where it ends (nodejs/node#28438).
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const head = () =>
      new Promise<{ contentLength: string | undefined; offset: string | undefined; reused: boolean }>(
        (resolve, reject) => {
          const req = http.request(url, { method: 'HEAD', agent, headers }, (res) => {
            res.resume();
            res.on('end', () =>
              resolve({
                contentLength: res.headers['content-length'],
                offset: res.headers['upload-offset'] as string | undefined,
                reused: req.reusedSocket,
              }),
            );
          });
          req.on('error', reject);
          req.end();
        },
      );
    try {
      // Unfinished: GET has no content to send (it refuses), so 0.
      expect(await head()).toEqual({ contentLength: '0', offset: '0', reused: false });
      // The agent hands the socket back after 'end'; the next check goes out on it.
      await new Promise((resolve) => setImmediate(resolve));
      expect(await head()).toEqual({ contentLength: '0', offset: '0', reused: true });

      const patched = await fetch(url, {
        method: 'PATCH',
        headers: { ...headers, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: data,
      });
      expect(patched.status).toBe(204);
      // Completed: GET streams the bytes from local files (their length) and redirects to S3 (no content).
      const get = await fetch(url, { headers, redirect: 'manual' });
      const getContent = get.status === 200 ? String(data.length) : '0';
      await get.arrayBuffer();
      await new Promise((resolve) => setImmediate(resolve));
      expect(await head()).toEqual({ contentLength: getContent, offset: String(data.length), reused: true });
    } finally {
      agent.destroy();
    }
  });

  test('a terminated upload is aborted and gone', async () => {
    const user = uniqueUser('cid');
    const headers = { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${await tokenFor(user)}` };
    const created = await fetch(`${freight.url}/files/`, {
      method: 'POST',
      headers: { ...headers, 'Upload-Length': '100' },
    });
    const url = created.headers.get('location')!;
    const deleted = await fetch(url, { method: 'DELETE', headers });
    expect(deleted.status).toBe(204);
    expect((await api(user, uploadIdOf(url))).status).toBe('aborted');
    expect((await fetch(url, { method: 'HEAD', headers })).status).toBe(410);
  });

  test('a finished upload is terminated too (termination covers completed uploads): 204, and its bytes are gone', async () => {
    const user = uniqueUser('dot');
    const headers = { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${await tokenFor(user)}` };
    const created = await fetch(`${freight.url}/files/`, {
      method: 'POST',
      headers: { ...headers, 'Upload-Length': '5', 'Content-Type': 'application/offset+octet-stream' },
      body: 'hello',
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('upload-offset')).toBe('5');
    const url = created.headers.get('location')!;
    expect((await download(user, url)).toString()).toBe('hello');
    const deleted = await fetch(url, { method: 'DELETE', headers });
    expect(deleted.status).toBe(204);
    expect((await api(user, uploadIdOf(url))).status).toBe('aborted');
    const head = await fetch(url, { method: 'HEAD', headers });
    expect(head.status).toBe(410);
    const get = await fetch(url, { headers: { Authorization: headers.Authorization } });
    expect(get.status).toBe(410);
    expect(await errorCodeOf(get)).toBe('ERR_UPLOAD_GONE');
  });

  test('direct-to-S3 uploads are there exactly when S3 is', async () => {
    const res = await fetch(`${freight.url}/api/multipart`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${await tokenFor(uniqueUser('eli'))}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ filename: 'a.bin', size: 10 }),
    });
    const body = (await res.json()) as { message?: string };
    if (freight.config.s3) {
      expect(res.status).toBe(201);
    } else {
      expect(res.status).toBe(501);
      expect(body.message).toMatch(/need S3 storage: set S3_BUCKET/);
    }
  });
});
