/** /healthz answers while the process lives; /readyz only when the database and the bucket answer. */
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestBucket, serviceEnv, startFreight, testS3Client } from '../helpers/harness.js';

let s3: S3Client;
let bucket: { bucket: string; drop(): Promise<void> };

beforeAll(async () => {
  s3 = testS3Client();
  bucket = await createTestBucket(s3, 'freight-health');
});
afterAll(async () => {
  await bucket?.drop();
  s3?.destroy();
});

describe('health and readiness', () => {
  test('ready when Postgres and the bucket answer', async () => {
    const freight = await startFreight(serviceEnv(bucket.bucket));
    try {
      expect(await (await fetch(`${freight.url}/healthz`)).json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${freight.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', storage: 'ok' } });
    } finally {
      await freight.close();
    }
  });

  test('503 naming the failing check when the bucket does not exist', async () => {
    const freight = await startFreight(serviceEnv('freight-no-such-bucket'));
    try {
      expect((await fetch(`${freight.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${freight.url}/readyz`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as { status: string; checks: Record<string, string> };
      expect(body.status).toBe('unavailable');
      expect(body.checks.database).toBe('ok');
      expect(body.checks.storage).toMatch(/^failed/);
    } finally {
      await freight.close();
    }
  });

  test('503 when the S3 endpoint does not answer at all', async () => {
    const freight = await startFreight(serviceEnv(bucket.bucket, { S3_ENDPOINT: 'http://127.0.0.1:9' }));
    try {
      const ready = await fetch(`${freight.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { checks: Record<string, string> }).checks.storage).toMatch(/^failed/);
    } finally {
      await freight.close();
    }
  });
});
