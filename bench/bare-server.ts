/**
 * The baseline: what a user would run instead of Freight. @tus/server with @tus/s3-store on plain node:http,
 * default options. The only settings added are the ones any S3-compatible server needs (endpoint, path style,
 * no checksum trailers, which Ceph RGW refuses).
 */
import http from 'node:http';
import { S3Store } from '@tus/s3-store';
import { Server } from '@tus/server';

const env = process.env;
const server = new Server({
  path: '/files',
  datastore: new S3Store({
    s3ClientConfig: {
      bucket: env.S3_BUCKET!,
      endpoint: env.S3_ENDPOINT,
      region: env.S3_REGION ?? 'us-east-1',
      credentials: { accessKeyId: env.S3_ACCESS_KEY_ID!, secretAccessKey: env.S3_SECRET_ACCESS_KEY! },
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    },
  }),
});

http
  .createServer((req, res) => void server.handle(req, res))
  .listen(Number(env.PORT), '127.0.0.1', () => {
    console.log(`bare tus server listening on ${env.PORT}`);
  });
