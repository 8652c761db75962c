/**
 * The ways of getting one file into the bucket that the benchmark compares. Each sends the same file and
 * counts the HTTP requests it makes (to any server).
 */
import { createReadStream } from 'node:fs';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { Upload as S3Upload } from '@aws-sdk/lib-storage';
import { Upload as TusUpload } from 'tus-js-client';
import { s3ClientFor, type S3Settings } from '../scripts/services.js';
import { Authenticator } from '../src/auth/authenticator.js';
import { fileSource, uploadDirect } from '../src/client/direct-upload.js';
import { BENCH_SECRET, type ServerProcess } from './servers.js';

export interface Contender {
  name: string;
  /** The server process whose costs are measured (none for straight-to-S3). */
  server: ServerProcess | undefined;
  /** Uploads the file; returns the object key and the number of HTTP requests made. */
  upload(file: string, size: number): Promise<{ key: string; requests: number }>;
}

export async function benchToken(): Promise<string> {
  return (await Authenticator.create({ mode: 'jwt', secret: BENCH_SECRET })).issue('bench', 24 * 3600);
}

/** The limit: the AWS SDK's managed multipart upload, from this process straight to S3. */
export function limitContender(s3: S3Settings, bucket: string): Contender {
  return {
    name: 'limit',
    server: undefined,
    async upload(file) {
      const client = s3ClientFor(s3);
      let requests = 0;
      client.middlewareStack.add(
        (next) => (args) => {
          requests++;
          return next(args);
        },
        { step: 'finalizeRequest' },
      );
      const key = `limit-${Date.now()}-${Math.random().toString(36).slice(2)}`;
      await new S3Upload({
        client,
        params: { Bucket: bucket, Key: key, Body: createReadStream(file) },
        partSize: 16 * 1024 * 1024,
        queueSize: 4,
      }).done();
      client.destroy();
      return { key, requests };
    },
  };
}

/** tus-js-client streaming the whole file in one PATCH (its default), as most users run it. */
export function tusContender(name: string, server: ServerProcess, token: string | undefined): Contender {
  return {
    name,
    server,
    upload(file, size) {
      let requests = 0;
      return new Promise((resolve, reject) => {
        const upload = new TusUpload(createReadStream(file), {
          endpoint: `${server.url}/files/`,
          uploadSize: size,
          headers: token ? { Authorization: `Bearer ${token}` } : {},
          metadata: { filename: 'bench.bin', filetype: 'application/octet-stream' },
          retryDelays: [],
          storeFingerprintForResuming: false,
          onBeforeRequest: () => {
            requests++;
          },
          onSuccess: () => resolve({ key: new URL(upload.url!).pathname.split('/').pop()!, requests }),
          onError: reject,
        });
        upload.start();
      });
    },
  };
}

/** Freight's direct path with the project's client: parts PUT straight to S3 with presigned URLs. */
export function directContender(server: ServerProcess, token: string): Contender {
  return {
    name: 'freight direct',
    server,
    async upload(file) {
      let requests = 0;
      const counting: typeof fetch = (input, init) => {
        requests++;
        return fetch(input, init);
      };
      const result = await uploadDirect({
        endpoint: server.url,
        token,
        source: await fileSource(file),
        filename: 'bench.bin',
        fetch: counting,
      });
      return { key: result.key, requests };
    },
  };
}

export async function deleteObject(s3: S3Settings, bucket: string, key: string): Promise<void> {
  const client = s3ClientFor(s3);
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${key}.info` })).catch(() => {});
  client.destroy();
}
