/** The bucket set-up (npm run s3:bucket) lets a browser PUT parts and read their ETag. */
import { DeleteBucketCommand, DeleteBucketCorsCommand, PutBucketCorsCommand, type S3Client } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { ensureBucket } from '../../src/storage/bucket.js';
import { testS3Client } from '../helpers/harness.js';

let s3: S3Client;
const bucket = `freight-cors-${randomUUID().slice(0, 8)}`;

beforeAll(() => {
  s3 = testS3Client();
});
afterAll(async () => {
  await s3.send(new DeleteBucketCorsCommand({ Bucket: bucket })).catch(() => {});
  await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
  s3.destroy();
});

describe('bucket set-up', () => {
  test('creates the bucket once and answers a browser preflight for a part PUT, exposing ETag', async () => {
    expect(await ensureBucket(s3, bucket, { corsOrigins: ['https://app.example.com'] })).toEqual({
      created: true,
      cors: 'bucket',
    });
    expect(await ensureBucket(s3, bucket, { corsOrigins: ['https://app.example.com'] })).toEqual({
      created: false,
      cors: 'bucket',
    });
    const preflight = await fetch(`${inject('s3').endpoint}/${bucket}/some-key?partNumber=1&uploadId=x`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://app.example.com',
        'Access-Control-Request-Method': 'PUT',
        'Access-Control-Request-Headers': 'content-md5,content-type',
      },
    });
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(preflight.headers.get('access-control-allow-methods')).toMatch(/PUT/);
    expect(preflight.headers.get('access-control-expose-headers')).toMatch(/ETag/i);
    // A page that follows a download's redirect reads the file's name and range.
    const download = await fetch(`${inject('s3').endpoint}/${bucket}/some-key`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://app.example.com',
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'range',
      },
    });
    expect(download.status).toBe(200);
    expect(download.headers.get('access-control-expose-headers')).toMatch(/Content-Disposition/i);
    expect(download.headers.get('access-control-expose-headers')).toMatch(/Content-Range/i);
  });

  test("MinIO's community edition (no bucket CORS: PutBucketCors is NotImplemented) is reported, not an error", async () => {
    const minio = {
      send: async (command: unknown) => {
        if (command instanceof PutBucketCorsCommand) {
          throw Object.assign(new Error('A header you provided implies functionality that is not implemented'), {
            name: 'NotImplemented',
          });
        }
        return {};
      },
    } as unknown as S3Client;
    expect(await ensureBucket(minio, 'any', { corsOrigins: '*' })).toEqual({ created: false, cors: 'server-wide' });
  });
});
