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
    const client = new S3Client({
      region: 'us-east-1',
      credentials,
      endpoint: 'http://127.0.0.1:7480',
      forcePathStyle: true,
    });
    const now = new Date('2026-11-29T10:00:00Z');
    const [part] = await new PartPresigner(client, 'bkt', 60).sign('k', 'u', [{ partNumber: 1, size: undefined }], now);
    const url = new URL(part!.url);
    expect(`${url.origin}${url.pathname}`).toBe('http://127.0.0.1:7480/bkt/k');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    expect(url.searchParams.get('X-Amz-Date')).toBe('20261129T100000Z');
    expect(part!.expiresAt).toBe('2026-11-29T10:01:00.000Z');
  });

  /** Every query parameter of a URL, sorted: two URLs that sign the same request compare equal. */
  const parts = (url: string) => {
    const parsed = new URL(url);
    return {
      origin: parsed.origin,
      path: parsed.pathname,
      query: [...parsed.searchParams].sort(([a], [b]) => (a < b ? -1 : 1)),
    };
  };

  test.each([
    [
      'path style, MD5 and length bound',
      { endpoint: 'http://127.0.0.1:7480', forcePathStyle: true },
      'k',
      { partNumber: 3, size: 100, md5: 'abc=' },
    ],
    ['virtual-hosted AWS, length only', {}, 'uploads/2026/a b+c.bin', { partNumber: 10000, size: 5 * 1024 * 1024 }],
    [
      'temporary credentials, nothing bound but the host',
      { sessionToken: 'FQoGZXIvYXdzE//token+/=' },
      "ä'(x)*!~.bin",
      { partNumber: 1, size: undefined },
    ],
    ['accelerated', { useAccelerateEndpoint: true }, 'k', { partNumber: 2, size: 7, md5: '1B2M2Y8AsgTpgAmY7PhCfg==' }],
  ] as const)('%s: the URL is the one the SDK signs for the same request', async (_name, settings, key, part) => {
    const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
    const { UploadPartCommand } = await import('@aws-sdk/client-s3');
    const { sessionToken, ...clientSettings } = { sessionToken: undefined, ...settings };
    const client = new S3Client({
      region: 'eu-central-1',
      credentials: { ...credentials, ...(sessionToken ? { sessionToken } : {}) },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      ...clientSettings,
    });
    const now = new Date('2026-11-29T10:00:00Z');
    const presigner = new PartPresigner(client, 'bkt', 900);
    // Twice: the second is signed with the key's cached shape.
    for (const partNumber of [part.partNumber, 4]) {
      const [ours] = await presigner.sign(key, 'upload/1=', [{ ...part, partNumber }], now);
      const sdk = await getSignedUrl(
        client,
        new UploadPartCommand({
          Bucket: 'bkt',
          Key: key,
          UploadId: 'upload/1=',
          PartNumber: partNumber,
          ...(part.size !== undefined ? { ContentLength: part.size } : {}),
          ...('md5' in part ? { ContentMD5: part.md5 } : {}),
        }),
        { expiresIn: 900, signingDate: now },
      );
      expect(parts(ours!.url)).toEqual(parts(sdk));
    }
  });
});
