/**
 * The direct-upload service on real PostgreSQL and real S3, with the storage wrapped to count and hold
 * CompleteMultipartUpload until the test lets it go: concurrent completes must not both reach S3.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { openPostgres, type Database } from '../../src/db/client.js';
import { UploadRepository } from '../../src/db/repository.js';
import { PartPresigner } from '../../src/direct/presigner.js';
import { DirectUploads } from '../../src/direct/service.js';
import { S3MultipartStorage, type MultipartStorage } from '../../src/storage/multipart.js';
import { UploadService } from '../../src/uploads/service.js';
import { MiB, createTestBucket, randomData, testS3Client, uniqueUser } from '../helpers/harness.js';
import { testDatabaseUrl } from '../helpers/file-database.js';

let s3: S3Client;
let bucket: { bucket: string; drop(): Promise<void> };
let database: Database;
let uploads: UploadService;

beforeAll(async () => {
  s3 = testS3Client();
  bucket = await createTestBucket(s3, 'freight-direct-service');
  database = await openPostgres(testDatabaseUrl());
  uploads = new UploadService(new UploadRepository(database.db), { expiryMs: 3_600_000 });
});
afterAll(async () => {
  await database?.close();
  await bucket?.drop();
  s3?.destroy();
});

/** The bucket's multipart storage, as the app builds it. */
const bucketStorage = () => new S3MultipartStorage(s3, bucket.bucket, inject('s3').endpoint);

/** The service over `storage`, with 5 MiB parts. */
const directOver = (storage: MultipartStorage) =>
  new DirectUploads(uploads, storage, new PartPresigner(s3, bucket.bucket, 900), {
    preferredPartSize: 5 * MiB,
    maxParts: 10_000,
    maxUploadSize: 100 * MiB,
  });

/**
 * `real`, counting its completes; the first one waits, once it has reached S3's doorstep (`reached`), until the
 * test calls `release()`. Any later complete goes straight through (so a second one that got past the claim
 * shows in the count instead of hanging the test).
 */
function gatedStorage(real: MultipartStorage) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let arrive!: () => void;
  const reached = new Promise<void>((resolve) => (arrive = resolve));
  const storage = Object.create(real) as MultipartStorage;
  const counts = { completes: 0 };
  storage.complete = async (...args) => {
    if (counts.completes++ === 0) {
      arrive();
      await gate;
    }
    return real.complete(...args);
  };
  return { storage, counts, reached, release };
}

/** The outcomes of the first `n` of `promises` to settle. */
function firstSettled<T>(promises: ReadonlyArray<Promise<T>>, n: number): Promise<Array<PromiseSettledResult<T>>> {
  return new Promise((resolve) => {
    const outcomes: Array<PromiseSettledResult<T>> = [];
    const record = (outcome: PromiseSettledResult<T>) => {
      outcomes.push(outcome);
      if (outcomes.length === n) resolve(outcomes);
    };
    for (const promise of promises) {
      promise.then(
        (value) => record({ status: 'fulfilled', value }),
        (reason: unknown) => record({ status: 'rejected', reason }),
      );
    }
  });
}

async function uploadedDirectly(direct: DirectUploads, user: string, size: number) {
  const { upload, parts } = await direct.create(user, { filename: 'f', size, mimeType: 'application/octet-stream' });
  const etags = [];
  for (const part of parts) {
    const res = await fetch(part.url, { method: 'PUT', body: randomData(part.size!) });
    etags.push({ partNumber: part.partNumber, etag: res.headers.get('etag')! });
  }
  return { id: upload.id, etags };
}

describe('direct upload service', () => {
  test('of eight concurrent completes only one calls S3; the others are told to retry while it runs', async () => {
    const gated = gatedStorage(bucketStorage());
    const direct = directOver(gated.storage);
    const user = uniqueUser('svc');
    const { id, etags } = await uploadedDirectly(direct, user, 7 * MiB);
    const attempts = Array.from({ length: 8 }, () => direct.complete(user, id, etags));
    const firstSeven = firstSettled(attempts, 7);
    await gated.reached;
    // While one complete holds the upload at S3, the seven others answer.
    const others = await firstSeven;
    expect(others.map((outcome) => (outcome.status === 'rejected' ? String(outcome.reason) : 'completed'))).toEqual(
      Array.from({ length: 7 }, () => expect.stringMatching(/another request is completing/)),
    );
    expect(gated.counts.completes).toBe(1);
    gated.release();
    const results = await Promise.allSettled(attempts);
    const fulfilled = results.filter((result) => result.status === 'fulfilled');
    expect(fulfilled).toHaveLength(1);
    // and afterwards every complete answers the same, without S3
    expect(await direct.complete(user, id, etags)).toEqual(fulfilled[0]!.value);
    expect(gated.counts.completes).toBe(1);
  });

  test('an abort racing a complete cannot abort the completed upload', async () => {
    const gated = gatedStorage(bucketStorage());
    const direct = directOver(gated.storage);
    const user = uniqueUser('svc');
    const { id, etags } = await uploadedDirectly(direct, user, 6 * MiB);
    const completing = direct.complete(user, id, etags);
    await gated.reached;
    await expect(direct.abort(user, id)).rejects.toThrow(/another request is completing/);
    gated.release();
    await completing;
    await expect(direct.abort(user, id)).rejects.toThrow(/completed and cannot be aborted/);
    expect((await uploads.access.getOwned(user, id)).status).toBe('completed');
  });

  test('a complete whose answer was lost is recognised by the object S3 holds', async () => {
    const real = bucketStorage();
    const direct = directOver(real);
    const user = uniqueUser('svc');
    const { id, etags } = await uploadedDirectly(direct, user, 6 * MiB);
    const upload = await uploads.access.getOwned(user, id);
    // S3 assembled it, but the process died before the row said so.
    await real.complete(
      upload.storageKey,
      upload.s3UploadId!,
      (await real.listParts(upload.storageKey, upload.s3UploadId!))!,
    );
    expect((await uploads.access.getOwned(user, id)).status).toBe('pending');
    const answer = await direct.complete(user, id, etags);
    expect(answer).toMatchObject({ id, size: 6 * MiB });
    expect((await uploads.access.getOwned(user, id)).status).toBe('completed');
  });

  test('an upload whose multipart upload vanished is gone, and marked lost', async () => {
    const real = bucketStorage();
    const direct = directOver(real);
    const user = uniqueUser('svc');
    const { id, etags } = await uploadedDirectly(direct, user, 6 * MiB);
    const upload = await uploads.access.getOwned(user, id);
    await real.abort(upload.storageKey, upload.s3UploadId!);
    // an object of another length under the key does not count as this upload
    await s3.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: upload.storageKey, Body: 'short' }));
    await expect(direct.complete(user, id, etags)).rejects.toMatchObject({ status: 410 });
    expect(await uploads.access.getOwned(user, id)).toMatchObject({
      status: 'lost',
      error: 'the multipart upload no longer exists in storage',
    });
  });
});
