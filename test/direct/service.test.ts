/**
 * The direct-upload service on real PostgreSQL and real S3, with the storage wrapped to count and slow down
 * CompleteMultipartUpload: concurrent completes must not both reach S3.
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

let s3: S3Client;
let bucket: { bucket: string; drop(): Promise<void> };
let database: Database;
let uploads: UploadService;

beforeAll(async () => {
  s3 = testS3Client();
  bucket = await createTestBucket(s3, 'freight-direct-service');
  database = await openPostgres(inject('databaseUrl'));
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
  new DirectUploads(uploads, storage, new PartPresigner(s3, bucket.bucket, 900), { preferredPartSize: 5 * MiB, maxParts: 10_000, maxUploadSize: 100 * MiB });

function countingStorage(real: MultipartStorage): MultipartStorage & { completes: number } {
  const wrapper = Object.create(real) as MultipartStorage & { completes: number };
  wrapper.completes = 0;
  wrapper.complete = async (...args) => {
    wrapper.completes++;
    await new Promise((resolve) => setTimeout(resolve, 300));
    return real.complete(...args);
  };
  return wrapper;
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
  test('of eight concurrent completes only one calls S3; the others wait their turn or see it done', async () => {
    const storage = countingStorage(bucketStorage());
    const direct = directOver(storage);
    const user = uniqueUser('svc');
    const { id, etags } = await uploadedDirectly(direct, user, 7 * MiB);
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => direct.complete(user, id, etags)));
    expect(storage.completes).toBe(1);
    const fulfilled = results.filter((r) => r.status === 'fulfilled');
    expect(fulfilled.length).toBeGreaterThanOrEqual(1);
    for (const result of results) {
      if (result.status === 'rejected') expect(String(result.reason)).toMatch(/another request is completing/);
    }
    // and afterwards every complete answers the same, still without S3
    expect(await direct.complete(user, id, etags)).toEqual((fulfilled[0] as PromiseFulfilledResult<unknown>).value);
    expect(storage.completes).toBe(1);
  });

  test('an abort racing a complete cannot abort the completed upload', async () => {
    const storage = countingStorage(bucketStorage());
    const direct = directOver(storage);
    const user = uniqueUser('svc');
    const { id, etags } = await uploadedDirectly(direct, user, 6 * MiB);
    const completing = direct.complete(user, id, etags);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await expect(direct.abort(user, id)).rejects.toThrow(/another request is completing/);
    await completing;
    await expect(direct.abort(user, id)).rejects.toThrow(/completed and cannot be aborted/);
    expect((await uploads.getOwned(user, id)).status).toBe('completed');
  });

  test('a complete whose answer was lost is recognised by the object S3 holds', async () => {
    const real = bucketStorage();
    const direct = directOver(real);
    const user = uniqueUser('svc');
    const { id, etags } = await uploadedDirectly(direct, user, 6 * MiB);
    const upload = await uploads.getOwned(user, id);
    // S3 assembled it, but the process died before the row said so.
    await real.complete(upload.storageKey, upload.s3UploadId!, (await real.listParts(upload.storageKey, upload.s3UploadId!))!);
    expect((await uploads.getOwned(user, id)).status).toBe('pending');
    const answer = await direct.complete(user, id, etags);
    expect(answer).toMatchObject({ id, size: 6 * MiB });
    expect((await uploads.getOwned(user, id)).status).toBe('completed');
  });

  test('an upload whose multipart upload vanished is gone, and marked lost', async () => {
    const real = bucketStorage();
    const direct = directOver(real);
    const user = uniqueUser('svc');
    const { id, etags } = await uploadedDirectly(direct, user, 6 * MiB);
    const upload = await uploads.getOwned(user, id);
    await real.abort(upload.storageKey, upload.s3UploadId!);
    // an object of another length under the key does not count as this upload
    await s3.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: upload.storageKey, Body: 'short' }));
    await expect(direct.complete(user, id, etags)).rejects.toMatchObject({ status: 410 });
    expect(await uploads.getOwned(user, id)).toMatchObject({ status: 'lost', error: 'the multipart upload no longer exists in storage' });
  });
});
