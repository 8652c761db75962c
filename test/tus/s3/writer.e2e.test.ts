/**
 * The writer sends a PATCH's parts to S3 in parallel but moves the stored offset strictly in order: when part k
 * fails after part k + 1 is stored, the offset stops at the start of part k, never past the hole.
 *
 * The S3 store is built outside the app (as test/tus/datastore.contract.e2e.test.ts does) on the test S3 gateway and
 * PostgreSQL. One thing is not real: the client that S3Objects sends bodies with fails UploadPart of one part of
 * one upload, with a 500 InternalError, each time only once the next part of the same write is stored. The
 * store's own retries of a body (src/storage/objects.ts) run against it, and fail too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { Upload } from '@tus/utils';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig, type Config } from '../../../src/config/index.js';
import { openPostgres, type Database } from '../../../src/db/client.js';
import { UploadRepository } from '../../../src/db/repository.js';
import { s3ClientConfig } from '../../../src/storage/s3.js';
import { createTusStore } from '../../../src/tus/store.js';
import type { FreightStore } from '../../../src/tus/upload-record.js';
import { UploadService } from '../../../src/uploads/service.js';
import {
  createTestBucket,
  listAllParts,
  MiB,
  randomData,
  serviceEnv,
  sha256,
  silentLogger,
  testS3Client,
  testSql,
} from '../../helpers/harness.js';
import { expectStoredUpTo, storedUpload } from './stored-state.js';
import { testDatabaseUrl } from '../../helpers/file-database.js';

/**
 * UploadPart of part `partNumber` of `key` fails (500 InternalError) while `armed`, every attempt, each only
 * after UploadPart of part `partNumber + 1` of the same key has succeeded.
 */
class PartFault {
  armed = false;
  attempts = 0;
  nextStored = false;
  private nextPartStored!: () => void;
  private readonly next = new Promise<void>((resolve) => {
    this.nextPartStored = resolve;
  });

  constructor(
    readonly key: string,
    readonly partNumber: number,
  ) {}

  /** `client` with this fault in its send. */
  around(client: S3Client): S3Client {
    const send = client.send.bind(client) as (command: unknown, options?: unknown) => Promise<unknown>;
    const faulty = async (command: unknown, options?: unknown): Promise<unknown> => {
      if (!(command instanceof UploadPartCommand) || command.input.Key !== this.key) return send(command, options);
      if (command.input.PartNumber === this.partNumber + 1) {
        const sent = await send(command, options);
        this.nextStored = true;
        this.nextPartStored();
        return sent;
      }
      if (command.input.PartNumber !== this.partNumber || !this.armed) return send(command, options);
      this.attempts++;
      await Promise.race([
        this.next,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`part ${this.partNumber + 1} was never stored`)), 20_000),
        ),
      ]);
      throw Object.assign(new Error('We encountered an internal error. Please try again.'), {
        name: 'InternalError',
        $fault: 'server',
        $metadata: { httpStatusCode: 500 },
      });
    };
    return new Proxy(client, {
      get: (target, property) => (property === 'send' ? faulty : Reflect.get(target, property, target)),
    });
  }
}

/** A request body carrying `data`, in socket-sized chunks. */
function body(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < data.length; at += 64 * 1024) yield data.subarray(at, at + 64 * 1024);
    })(),
  );
}

const PART = 5 * MiB;

describe('offsets without holes', () => {
  let bucket: Awaited<ReturnType<typeof createTestBucket>>;
  let s3: S3Client;
  let sql: ReturnType<typeof testSql>;
  let database: Database;
  let config: Config;
  let tempDir: string;
  const clients: S3Client[] = [];

  beforeAll(async () => {
    s3 = testS3Client();
    sql = testSql();
    bucket = await createTestBucket(s3, 'freight-writer');
    tempDir = await mkdtemp(path.join(os.tmpdir(), 'freight-writer-'));
    config = loadConfig({ ...serviceEnv(bucket.bucket, { S3_PART_SIZE: '5MiB' }), DATA_DIR: tempDir });
    database = await openPostgres(testDatabaseUrl());
  });
  afterAll(async () => {
    for (const client of clients) client.destroy();
    await database?.close();
    await sql?.end();
    await bucket?.drop();
    s3?.destroy();
    await rm(tempDir, { recursive: true, force: true });
  });

  /** The store as the app builds it (createTusStore), its body client wrapped by `fault`. */
  function storeWith(fault: PartFault): { store: FreightStore; uploads: UploadService } {
    const s3Config = config.s3!;
    const client = new S3Client(s3ClientConfig(s3Config, {}, config.s3RequestTimeoutMs));
    const bodyClient = new S3Client(s3ClientConfig(s3Config, { maxAttempts: 1 }, config.s3RequestTimeoutMs));
    clients.push(client, bodyClient);
    const uploads = new UploadService(new UploadRepository(database.db), { expiryMs: config.uploadExpiryMs });
    const store = createTusStore({
      config,
      uploads,
      log: silentLogger(),
      tempDir,
      s3: { client, bodyClient: fault.around(bodyClient) },
    });
    return { store, uploads };
  }

  test('part 2 of a 5-part write fails after part 3 is stored: the offset stops at the start of part 2, and the upload resumes from there byte-identical', async () => {
    const data = randomData(4 * PART + MiB + 7);
    const id = crypto.randomUUID();
    const fault = new PartFault(id, 2);
    const { store, uploads } = storeWith(fault);
    // The row the tus POST hook inserts (src/tus/server.ts onUploadCreate).
    await uploads.states.create({
      id,
      userId: 'writer-test',
      filename: null,
      mimeType: null,
      protocol: 'tus',
      totalSize: data.length,
      storageKey: id,
      partSize: store.partSizeFor(data.length),
      storedOffset: 0,
    });
    await store.create(new Upload({ id, size: data.length, offset: 0 }));
    expect((await storedUpload(sql, id)).partSize).toBe(PART);

    // One write of every part; part 2 keeps failing (each attempt after part 3 is in S3).
    fault.armed = true;
    await expect(store.write(body(data), id, 0)).rejects.toMatchObject({ name: 'InternalError' });
    expect(fault.nextStored).toBe(true);
    expect(fault.attempts).toBeGreaterThanOrEqual(1);

    // S3 has a hole: part 1 and part 3, not part 2. The offset stops before it and nothing claims what is past it.
    const upload = await storedUpload(sql, id);
    const inS3 = (await listAllParts(s3, bucket.bucket, id, upload.s3UploadId!)).map((part) => part.PartNumber);
    expect(inS3).toContain(1);
    expect(inS3).toContain(3);
    expect(inS3).not.toContain(2);
    expect((await store.getUpload(id)).offset).toBe(PART);
    expect(upload.parts.map((part) => part.partNumber)).toEqual([1]);
    expect(upload.staging).toBeNull();
    expect(upload.storedOffset).toBe(PART);

    // The same upload, written again from the offset it reports, with storage healthy.
    fault.armed = false;
    expect(await store.write(body(data.subarray(PART)), id, PART)).toBe(data.length);
    expect((await store.getUpload(id)).offset).toBe(data.length);
    await expectStoredUpTo(sql, s3, bucket.bucket, id, data.length);
    const done = await storedUpload(sql, id);
    expect(done.status).toBe('completed');
    expect(done.parts.map((part) => part.size)).toEqual([PART, PART, PART, PART, MiB + 7]);
    const chunks: Buffer[] = [];
    for await (const chunk of await store.read(id)) chunks.push(Buffer.from(chunk as Uint8Array));
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(data));
    console.info(`[writer] part 2 failed ${fault.attempts} attempt(s) in the first write`);
  });
});
