/**
 * The ways of getting one file into the bucket that the benchmark compares. Each sends the same file and
 * counts the HTTP requests it makes (to any server).
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { Upload as S3Upload } from '@aws-sdk/lib-storage';
import { Upload as TusUpload } from 'tus-js-client';
import { s3ClientFor, type S3Settings } from '../scripts/services.js';
import { Authenticator } from '../src/auth/authenticator.js';
import { uploadDirect } from '../src/client/direct-upload.js';
import { fileSource } from '../src/client/sources.js';
import type { CountingRelay } from './counting-relay.js';
import { BENCH_SECRET, type ServerProcess } from './servers.js';

export interface Contender {
  name: string;
  /** The server process whose costs are measured (none for straight-to-S3). */
  server: ServerProcess | undefined;
  /** The PATCH size of a tus client that splits the body (none: one PATCH, or not tus). */
  chunkSize?: number | undefined;
  /** The counting relay the server reaches S3 through, when its S3 traffic is measured. */
  relay?: CountingRelay | undefined;
  /** The largest upload the server takes at this chunk size, when the chunking bounds it. */
  largestUpload?: number | undefined;
  /** Unrecorded uploads before the measured ones (default 1), until its code is compiled. */
  warmUps?: number;
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

/**
 * One upload with tus-js-client: `input` is a file stream (read again per PATCH) or any stream (buffered a chunk at
 * a time, so `chunkSize` is then required). Without `chunkSize` the whole body goes in one PATCH, tus-js-client's
 * default. Without `retries` a failed request fails the upload; with them, tus-js-client retries as it does by
 * default (after 0, 1, 3 and 5 s) and `onRetry` hears of each failure it retries ("503: <the answer>"). Returns the upload's id (its
 * object key on both servers) and the HTTP requests made.
 */
export function tusUpload(options: {
  url: string;
  token: string | undefined;
  input: Readable;
  size: number;
  chunkSize?: number | undefined;
  retries?: { onRetry(failure: string): void } | undefined;
  /** tus-js-client's parallelUploads (partial uploads concatenated by the server). */
  parallelUploads?: number | undefined;
}): Promise<{ key: string; requests: number }> {
  let requests = 0;
  const { retries } = options;
  const sent = new Promise<{ key: string; requests: number }>((resolve, reject) => {
    const upload = new TusUpload(options.input, {
      ...(options.parallelUploads ? { parallelUploads: options.parallelUploads } : {}),
      endpoint: `${options.url}/files/`,
      // tus-js-client refuses uploadSize with parallelUploads: it then reads the size from the file itself.
      ...(options.parallelUploads ? {} : { uploadSize: options.size }),
      ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}),
      headers: options.token ? { Authorization: `Bearer ${options.token}` } : {},
      metadata: { filename: 'bench.bin', filetype: 'application/octet-stream' },
      retryDelays: retries ? [0, 1000, 3000, 5000] : [],
      // tus-js-client's own rule (any failure but a 4xx other than 409 and 423), told to the caller.
      onShouldRetry: (error) => {
        const status = error.originalResponse?.getStatus() ?? 0;
        const retry = status < 400 || status >= 500 || status === 409 || status === 423;
        if (retry) {
          const answer = error.originalResponse?.getBody().trim() || error.causingError?.message || error.message;
          retries?.onRetry(`${status || 'no answer'}: ${answer.replace(/\s+/g, ' ').slice(0, 200)}`);
        }
        return retry;
      },
      storeFingerprintForResuming: false,
      onBeforeRequest: () => {
        requests++;
      },
      onSuccess: () => resolve({ key: new URL(upload.url!).pathname.split('/').pop()!, requests }),
      onError: reject,
    });
    upload.start();
  });
  // A concatenated upload is assembled after its final POST is answered: the upload is done once it is completed.
  return options.parallelUploads
    ? sent.then(async (result) => ({
        ...result,
        requests: result.requests + (await untilCompleted(options.url, options.token, result.key)),
      }))
    : sent;
}

/** Polls GET /api/uploads/:id until the upload is completed; returns the requests it took. */
async function untilCompleted(url: string, token: string | undefined, id: string): Promise<number> {
  for (let requests = 1; ; requests++) {
    const res = await fetch(`${url}/api/uploads/${id}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    const { status } = (await res.json()) as { status?: string };
    if (status === 'completed') return requests;
    if (status !== 'pending' && status !== 'uploading') throw new Error(`upload ${id} ended ${status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * tus-js-client sending the file: in one PATCH (its default, as most users run it), or in PATCHes of `chunkSize`.
 * With a `relay`, the server's S3 traffic passes through it and is counted.
 */
export function tusContender(
  name: string,
  server: ServerProcess,
  token: string | undefined,
  options: { chunkSize?: number; relay?: CountingRelay; largestUpload?: number; parallelUploads?: number } = {},
): Contender {
  return {
    name,
    server,
    chunkSize: options.chunkSize,
    relay: options.relay,
    largestUpload: options.largestUpload,
    upload: (file, size) =>
      tusUpload({
        url: server.url,
        token,
        input: createReadStream(file),
        size,
        chunkSize: options.chunkSize,
        parallelUploads: options.parallelUploads,
      }),
  };
}

/** Freight's direct path with the project's client: parts PUT straight to S3 with presigned URLs. */
export function directContender(server: ServerProcess, token: string): Contender {
  return {
    name: 'freight direct',
    server,
    // Four requests per upload: one warm-up leaves its code interpreted, and its CPU per upload (tens of ms) is
    // then mostly the compiler's. A server that has taken a few uploads is what is measured: a 512 MiB upload
    // took ~100 ms of server CPU after 10 warm-ups, ~85 ms after 60 and after 150 (2026-12-07, medians of 8).
    warmUps: 50,
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

/**
 * What S3 holds under `key`: its size and the number of parts it was assembled from (the `-N` suffix of a
 * multipart object's ETag; 1 for an object stored by a single PUT).
 */
export async function storedObject(
  s3: S3Settings,
  bucket: string,
  key: string,
): Promise<{ size: number; parts: number }> {
  const client = s3ClientFor(s3);
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    const suffix = /-(\d+)"?$/.exec(head.ETag ?? '');
    return { size: head.ContentLength ?? 0, parts: suffix ? Number(suffix[1]) : 1 };
  } finally {
    client.destroy();
  }
}

export async function deleteObject(s3: S3Settings, bucket: string, key: string): Promise<void> {
  const client = s3ClientFor(s3);
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${key}.info` })).catch(() => {});
  client.destroy();
}
