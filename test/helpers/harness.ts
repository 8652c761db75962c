/**
 * Starting Freight against the real services of global-setup.ts, and looking at what it left in S3 and Postgres.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  type S3Client,
  type Part,
} from '@aws-sdk/client-s3';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import postgres from 'postgres';
import { afterAll, beforeAll, inject } from 'vitest';
import { s3ClientFor, s3EnvFor } from '../../scripts/services.js';
import { buildApp, type AppDeps } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config/index.js';

export { testDatabaseUrl } from './file-database.js';
import { testDatabaseUrl } from './file-database.js';

export const JWT_SECRET = 'freight-test-secret-0123456789abcdef';

type Env = Record<string, string | undefined>;

/** The environment of a Freight on real Postgres and real S3 (a fresh bucket), plus `overrides`. */
export function serviceEnv(bucket: string, overrides: Env = {}): Env {
  return {
    DATABASE_URL: testDatabaseUrl(),
    ...s3EnvFor(inject('s3'), bucket),
    AUTH_JWT_SECRET: JWT_SECRET,
    LOG_LEVEL: 'silent',
    ...overrides,
  };
}

export interface RunningFreight {
  app: FastifyInstance;
  config: Config;
  url: string;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * Builds the app from an environment (as server.ts would) and listens on a free port. `adjust` changes the
 * configuration past what the environment may say (a test's UPLOAD_EXPIRY of seconds).
 */
export async function startFreight(
  env: Env,
  deps: AppDeps = {},
  adjust: (config: Config) => Config = (config) => config,
): Promise<RunningFreight> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'freight-test-data-'));
  const config = adjust(loadConfig({ DATA_DIR: dataDir, ...env }));
  const app = await buildApp(config, deps);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    app,
    config,
    url: `http://127.0.0.1:${port}`,
    dataDir,
    close: async () => {
      const closing = app.close();
      // Node does not count every client keep-alive connection as idle, and close() would wait for the client
      // to drop it (up to the 72 s keep-alive timeout): after a moment, cut whatever is left.
      const cutOff = setTimeout(() => app.server.closeAllConnections(), 200);
      await closing;
      clearTimeout(cutOff);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function tokenFor(user: string, options: { expiresIn?: string; secret?: string } = {}): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
    .sign(new TextEncoder().encode(options.secret ?? JWT_SECRET));
}

/** What `work` was rejected with; fails the test if it settled otherwise. */
export async function rejectionOf(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, but it resolved');
}

export const uniqueUser = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;

export function testS3Client(): S3Client {
  return s3ClientFor(inject('s3'));
}

/** A new bucket for one test file; the returned function empties and deletes it. */
export async function createTestBucket(
  client: S3Client,
  prefix: string,
): Promise<{ bucket: string; drop(): Promise<void> }> {
  const bucket = `${prefix}-${randomUUID().slice(0, 8)}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    bucket,
    drop: async () => {
      for (const upload of await listMultipartUploads(client, bucket)) {
        await client.send(
          new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.key, UploadId: upload.uploadId }),
        );
      }
      const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      const keys = (listed.Contents ?? []).map((object) => ({ Key: object.Key! }));
      if (keys.length > 0) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
    },
  };
}

export async function listMultipartUploads(client: S3Client, bucket: string) {
  const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (listed.Uploads ?? []).map((upload) => ({ key: upload.Key!, uploadId: upload.UploadId! }));
}

/** Every part S3 holds for a multipart upload (all pages). */
export async function listAllParts(client: S3Client, bucket: string, key: string, uploadId: string): Promise<Part[]> {
  const parts: Part[] = [];
  let marker: string | undefined;
  do {
    const page = await client.send(
      new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }),
    );
    parts.push(...(page.Parts ?? []));
    marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
  } while (marker);
  return parts;
}

export async function sha256OfObject(client: S3Client, bucket: string, key: string): Promise<string> {
  const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of object.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
  return hash.digest('hex');
}

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** What the tests of one file share: a Freight on the test database and a fresh bucket of the test S3 server. */
export interface FreightOnS3 {
  s3: S3Client;
  bucket: { bucket: string; drop(): Promise<void> };
  freight: RunningFreight;
  /** The test database, to look at the rows Freight wrote. */
  sql: ReturnType<typeof testSql>;
}

/**
 * Starts a Freight (environment `overrides`, dependencies `deps`) on a bucket named after `prefix` before the
 * file's tests and removes both after them. The fields are set once the file's tests run.
 */
export function freightOnS3(prefix: string, overrides: Env = {}, deps: AppDeps = {}): FreightOnS3 {
  const shared = {} as FreightOnS3;
  beforeAll(async () => {
    shared.s3 = testS3Client();
    shared.bucket = await createTestBucket(shared.s3, prefix);
    shared.freight = await startFreight(serviceEnv(shared.bucket.bucket, overrides), deps);
    shared.sql = testSql();
  });
  afterAll(async () => {
    await shared.freight?.close();
    await shared.sql?.end();
    await shared.bucket?.drop();
    shared.s3?.destroy();
  });
  return shared;
}

/**
 * A database of its own on the test PostgreSQL (the first Freight that opens it applies the migrations), for tests
 * of what acts on every upload of a database (the janitor, the webhook deliverer): tests in other files running
 * meanwhile cannot see its rows, nor it theirs. drop() removes it.
 */
export async function isolatedDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = testSql();
  const name = `${prefix}_${randomUUID().slice(0, 8)}`.replace(/[^a-z0-9_]/g, '_');
  await admin.unsafe(`create database "${name}"`);
  const url = new URL(testDatabaseUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.end();
    },
  };
}

/** A database and a bucket of one test file's own, and clients of both. */
export interface IsolatedServices {
  /** The file's database (isolatedDatabase): the first Freight started on it applies the migrations. */
  database: { url: string; drop(): Promise<void> };
  s3: S3Client;
  bucket: { bucket: string; drop(): Promise<void> };
  /** A client of the file's database. */
  sql: ReturnType<typeof testSql>;
}

/**
 * A database and a bucket of the file's own, made before its tests and removed after them (after the file's own
 * afterAll hooks, which run first), for tests of what acts on every upload of a database: the janitor, the webhook
 * deliverer, the per-user bounds. The fields are set once the file's tests run.
 */
export function isolatedServices(prefix: string): IsolatedServices {
  const shared = {} as IsolatedServices;
  beforeAll(async () => {
    shared.database = await isolatedDatabase(prefix.replaceAll('-', '_'));
    shared.s3 = testS3Client();
    shared.bucket = await createTestBucket(shared.s3, prefix);
    shared.sql = postgres(shared.database.url, { max: 2, onnotice: () => {} });
  });
  afterAll(async () => {
    await shared.sql?.end();
    await shared.bucket?.drop();
    shared.s3?.destroy();
    await shared.database?.drop();
  });
  return shared;
}

/** Random bytes (typed over a plain ArrayBuffer so they can be a fetch body as well as a tus-js-client input). */
export const randomData = (size: number): Buffer<ArrayBuffer> => randomBytes(size) as Buffer<ArrayBuffer>;

/** Direct access to the test database, to look at the rows Freight wrote. */
export function testSql() {
  return postgres(testDatabaseUrl(), { max: 2, onnotice: () => {} });
}

export const MiB = 1024 * 1024;

/** Polls until `probe` returns a value that is not undefined (or throws after `timeoutMs`). */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A TCP relay to `target` that can be taken down and brought back on the same port: a storage outage. */
export { holdingProxy as outageProxy } from './proxy.js';

/** A logger that says nothing, for parts built outside an app (stores, services). */
export function silentLogger(): FastifyBaseLogger {
  const noop = () => {};
  const logger: FastifyBaseLogger = {
    level: 'silent',
    fatal: noop,
    error: noop,
    warn: noop,
    info: noop,
    debug: noop,
    trace: noop,
    silent: noop,
    child: () => logger,
  };
  return logger;
}

/**
 * The named error code of an answer (src/errors.ts): `error` of a JSON body, or the `CODE:` a tus text body
 * starts with. Reads the body.
 */
export async function errorCodeOf(res: Response): Promise<string | undefined> {
  const text = await res.text();
  if (res.headers.get('content-type')?.includes('application/json'))
    return (JSON.parse(text) as { error?: string }).error;
  return /^(ERR_[A-Z_]+):/.exec(text)?.[1];
}
