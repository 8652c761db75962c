import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, test } from 'vitest';
import { PartPresigner } from '../../src/direct/presigner.js';

const credentials = { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' };

describe('part URL signing (no network)', () => {
  test('S3_ACCELERATE signs for the bucket.s3-accelerate.amazonaws.com endpoint', async () => {
    const client = new S3Client({ region: 'eu-west-1', credentials, useAccelerateEndpoint: true });
    const [part] = await new PartPresigner(client, 'my-bucket', 900).sign('uploads/key', 'upload-1', [
      { partNumber: 7, size: 5242880, md5: '1B2M2Y8AsgTpgAmY7PhCfg==' },
    ]);
    const url = new URL(part!.url);
    expect(url.protocol).toBe('https:');
    expect(url.host).toBe('my-bucket.s3-accelerate.amazonaws.com');
    expect(url.pathname).toBe('/uploads/key');
    expect(url.searchParams.get('partNumber')).toBe('7');
    expect(url.searchParams.get('uploadId')).toBe('upload-1');
    expect(url.searchParams.get('X-Amz-Credential')).toMatch(/\/eu-west-1\/s3\/aws4_request$/);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('900');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-md5;host');
    expect(part!.headers).toEqual({ 'Content-MD5': '1B2M2Y8AsgTpgAmY7PhCfg==' });
  });

  test('a path-style endpoint keeps the bucket in the path; an unknown size binds no Content-Length', async () => {
    const client = new S3Client({ region: 'us-east-1', credentials, endpoint: 'http://127.0.0.1:7480', forcePathStyle: true });
    const now = new Date('2026-11-29T10:00:00Z');
    const [part] = await new PartPresigner(client, 'bkt', 60).sign('k', 'u', [{ partNumber: 1, size: undefined }], now);
    const url = new URL(part!.url);
    expect(`${url.origin}${url.pathname}`).toBe('http://127.0.0.1:7480/bkt/k');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    expect(url.searchParams.get('X-Amz-Date')).toBe('20261129T100000Z');
    expect(part!.expiresAt).toBe('2026-11-29T10:01:00.000Z');
  });

  test('the direct SigV4 signing gives the same URL as the SDK getSignedUrl would', async () => {
    const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
    const { UploadPartCommand } = await import('@aws-sdk/client-s3');
    const client = new S3Client({
      region: 'us-east-1',
      credentials,
      endpoint: 'http://127.0.0.1:7480',
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    const now = new Date('2026-11-29T10:00:00Z');
    const [ours] = await new PartPresigner(client, 'bkt', 900).sign('k', 'u', [{ partNumber: 3, size: 100, md5: 'abc=' }], now);
    const sdk = await getSignedUrl(
      client,
      new UploadPartCommand({ Bucket: 'bkt', Key: 'k', UploadId: 'u', PartNumber: 3, ContentLength: 100, ContentMD5: 'abc=' }),
      { expiresIn: 900, signingDate: now },
    );
    expect(new URL(ours!.url).searchParams.get('X-Amz-Signature')).toBe(new URL(sdk).searchParams.get('X-Amz-Signature'));
  });
});
