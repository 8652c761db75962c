/** Each fault tool does what the fault tests will rely on it to do. */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { s3ClientFor } from '../../scripts/services.js';
import {
  gatewayPauseUnavailable,
  holdingProxy,
  pauseGateway,
  resumeGateway,
  startServerProcess,
  throwawayPostgres,
  type ServerProcess,
  type ThrowawayPostgres,
} from './faults.js';
import {
  createTestBucket,
  eventually,
  rejectionOf,
  serviceEnv,
  testS3Client,
  tokenFor,
  uniqueUser,
} from './harness.js';
import { testDatabaseUrl } from './file-database.js';

/** How long `work` takes, logged so that the run shows what the tools cost. */
async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await work();
  console.info(`[faults] ${label}: ${Math.round(performance.now() - started)} ms`);
  return result;
}

/** The error code behind a failed fetch or driver call (fetch wraps it in `cause`). */
function codeOf(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const own = (error as Error & { code?: unknown }).code;
  return typeof own === 'string' ? own : codeOf(error.cause);
}

/**
 * What postgres.js reports when its server goes away: CONNECTION_CLOSED for a query sent on a connection that is being
 * cut (whether it has noticed depends on timing), ECONNREFUSED once it has to connect anew.
 */
const CONNECTION_ERRORS = ['ECONNREFUSED', 'CONNECTION_CLOSED', 'ECONNRESET'];

/** Resolves 'pending' if `work` has not settled within `ms`. */
const settlesWithin = (work: Promise<unknown>, ms: number) =>
  Promise.race([
    work.then(
      () => 'settled',
      () => 'settled',
    ),
    new Promise((resolve) => setTimeout(() => resolve('pending'), ms)),
  ]);

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

describe('throwawayPostgres', () => {
  // create ~0.7 s and start ~2.2 s (pg_ctlcluster's own readiness probe), so this is the slow one.
  let cluster: ThrowawayPostgres | undefined;
  afterAll(async () => {
    if (cluster) await timed('cluster drop', () => cluster!.drop());
  });

  test('accepts queries, refuses them while restart() has it down, accepts them again after', async () => {
    cluster = await timed('cluster create + start', () => throwawayPostgres());
    const sql = postgres(cluster.url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      expect(await sql`select 1 as one`).toEqual([{ one: 1 }]);
      const [listen] = await sql`show listen_addresses`;
      expect(listen?.listen_addresses).toBe('127.0.0.1');

      // restart() is what fault tests use: stop, an outage of `downMs`, start.
      const restarting = timed('cluster restart (1 s down)', () => cluster!.restart(1_000));
      await eventually(async () => ((await connectionRefused(cluster!.port)) ? true : undefined), 5_000);
      expect(CONNECTION_ERRORS).toContain(codeOf(await rejectionOf(sql`select 1`)));
      await restarting;
      // The same client reconnects on its own: for it, the outage is over.
      expect(await sql`select 2 as two`).toEqual([{ two: 2 }]);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});

describe('holdingProxy', () => {
  test('relays HTTP to S3, refuses while down, hangs while held, answers after release', async () => {
    const proxy = await holdingProxy(inject('s3').endpoint);
    try {
      // An anonymous ListBuckets: RGW answers 200 or 403, either proves the relay.
      const ask = () => fetch(`${proxy.url}/`, { signal: AbortSignal.timeout(1_000) });
      expect([200, 403]).toContain((await ask()).status);

      await proxy.down();
      expect(codeOf(await rejectionOf(ask()))).toBe('ECONNREFUSED');

      await proxy.hold();
      const held = await rejectionOf(ask());
      expect((held as Error).name).toBe('TimeoutError');

      await proxy.release();
      expect([200, 403]).toContain((await ask()).status);
    } finally {
      await proxy.down();
    }
  });

  test('relays PostgreSQL the same way', async () => {
    const proxy = await holdingProxy(testDatabaseUrl());
    const sql = postgres(proxy.url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      expect(await sql`select 1 as one`).toEqual([{ one: 1 }]);

      await proxy.hold();
      const hung = sql`select 2 as two`;
      expect(await settlesWithin(hung, 1_000)).toBe('pending');
      await proxy.release();
      // The held query goes through once the relay flows again, as after a server that woke up.
      expect(await hung).toEqual([{ two: 2 }]);

      await proxy.down();
      // The first query may still go out on the connection being cut (CONNECTION_CLOSED); the next one must connect.
      expect(CONNECTION_ERRORS).toContain(codeOf(await rejectionOf(sql`select 3`)));
      expect(codeOf(await rejectionOf(sql`select 3`))).toBe('ECONNREFUSED');
      await proxy.up();
      expect(await sql`select 4 as four`).toEqual([{ four: 4 }]);
    } finally {
      await sql.end({ timeout: 1 });
      await proxy.down();
    }
  });

  test('refuse(): every new connection is reset, and refusedArrival() says when the first one came', async () => {
    const proxy = await holdingProxy(inject('s3').endpoint);
    try {
      await proxy.refuse();
      let arrived = false;
      const arrival = proxy.refusedArrival().then(() => (arrived = true));
      expect(arrived).toBe(false);
      const attempt = rejectionOf(fetch(`${proxy.url}/`, { signal: AbortSignal.timeout(5_000) }));
      await arrival;
      expect(['ECONNRESET', 'UND_ERR_SOCKET']).toContain(codeOf(await attempt));
      await proxy.up();
      expect([200, 403]).toContain((await fetch(`${proxy.url}/`)).status);
    } finally {
      await proxy.down();
    }
  });

  test('idle(): a client that left while held is gone for the target only once the target has answered', async () => {
    // A target that holds its answer until the test lets it go: the request it had whole is still in hand.
    let answer: () => void = () => {};
    const answered = new Promise<void>((resolve) => (answer = resolve));
    let receivedWhole: () => void = () => {};
    const received = new Promise<void>((resolve) => (receivedWhole = resolve));
    const target = http.createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        receivedWhole();
        void answered.then(() => response.end('done'));
      });
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const proxy = await holdingProxy(`http://127.0.0.1:${(target.address() as net.AddressInfo).port}`);
    try {
      const client = net.connect(proxy.port, '127.0.0.1');
      client.on('error', () => {});
      client.write('PUT /part HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello');
      await received;
      await proxy.hold();
      client.destroy();
      let gone = false;
      const idle = proxy.idle().then(() => (gone = true));
      // Only the target's own close ends the wait: nothing the test does on a timer.
      await new Promise((resolve) => setImmediate(resolve));
      expect(gone).toBe(false);
      answer();
      await idle;
      expect(gone).toBe(true);
    } finally {
      await proxy.down();
      await new Promise((resolve) => target.close(resolve));
    }
  });
});

describe('pauseGateway / resumeGateway', () => {
  const { rgwDir } = inject('s3');

  test('a paused gateway answers nothing; a resumed one answers again', async ({ skip }) => {
    const unavailable = await gatewayPauseUnavailable(rgwDir);
    if (unavailable) skip(`cannot pause the S3 gateway: ${unavailable}`);
    const s3 = s3ClientFor(inject('s3'), {
      // Without throwOnRequestTimeout the SDK only logs the timeout and a call to a paused gateway never returns.
      requestHandler: { requestTimeout: 1_000, throwOnRequestTimeout: true },
      maxAttempts: 1,
    });
    try {
      await s3.send(new ListBucketsCommand({}));
      await pauseGateway(rgwDir);
      const timedOut = await rejectionOf(s3.send(new ListBucketsCommand({})));
      expect((timedOut as Error).name).toBe('TimeoutError');
      await resumeGateway(rgwDir);
      await s3.send(new ListBucketsCommand({}));
    } finally {
      await resumeGateway(rgwDir);
      s3.destroy();
    }
  });
});

describe('startServerProcess', () => {
  const s3 = testS3Client();
  let bucket: Awaited<ReturnType<typeof createTestBucket>>;
  let dataDir: string;
  const started: ServerProcess[] = [];

  beforeAll(async () => {
    bucket = await createTestBucket(s3, 'faults-proc');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'freight-faults-data-'));
  });
  afterAll(async () => {
    await Promise.all(started.map((server) => server.stop()));
    await bucket?.drop();
    s3.destroy();
    await rm(dataDir, { recursive: true, force: true });
  });

  const env = () => serviceEnv(bucket.bucket, { LOG_LEVEL: 'info', DATA_DIR: dataDir });

  test('serves, dies on SIGKILL (port refused), serves again after restart()', async () => {
    const server = await timed('server process start', () => startServerProcess(env()));
    started.push(server);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const firstPid = server.pid;

    await server.kill('SIGKILL');
    expect(await server.exited).toBeNull();
    expect(await connectionRefused(server.port)).toBe(true);

    await timed('server process restart', () => server.restart());
    expect(server.pid).not.toBe(firstPid);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(server.output()).toMatch(/freight serving tus/);
  });

  test('two processes on one database, bucket and DATA_DIR serve the same uploads', async () => {
    const [a, b] = await Promise.all([startServerProcess(env()), startServerProcess(env())]);
    started.push(a!, b!);
    const headers = { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${await tokenFor(uniqueUser('two'))}` };
    const created = await fetch(`${a!.url}/files/`, {
      method: 'POST',
      headers: { ...headers, 'Upload-Length': '1000' },
    });
    expect(created.status).toBe(201);
    const { pathname } = new URL(created.headers.get('location')!);
    const head = await fetch(`${b!.url}${pathname}`, { method: 'HEAD', headers });
    expect(head.status).toBe(200);
    expect(head.headers.get('upload-offset')).toBe('0');
    expect(head.headers.get('upload-length')).toBe('1000');

    await a!.stop();
    expect(await a!.exited).toBe(0);
  });
});
