/** tus-js-client wrapped in promises, recording the requests it makes. */
import http from 'node:http';
import type { Readable } from 'node:stream';
import { Upload, type HttpRequest } from 'tus-js-client';

export type UploadOptions = NonNullable<ConstructorParameters<typeof Upload>[1]>;

export interface SentRequest {
  method: string;
  url: string;
  uploadOffset: string | undefined;
}

export interface TusRun {
  upload: Upload;
  requests: SentRequest[];
  /** Every offset tus-js-client reported through onProgress. */
  progress: number[];
  /** Resolves with the upload URL on success. */
  done: Promise<string>;
}

export function startTusUpload(input: Buffer | Readable, options: UploadOptions): TusRun {
  const requests: SentRequest[] = [];
  const progress: number[] = [];
  let upload!: Upload;
  const done = new Promise<string>((resolve, reject) => {
    upload = new Upload(input, {
      retryDelays: [],
      storeFingerprintForResuming: false,
      ...options,
      onBeforeRequest: async (req: HttpRequest) => {
        requests.push({
          method: req.getMethod(),
          url: req.getURL(),
          uploadOffset: req.getHeader('Upload-Offset') ?? undefined,
        });
        await options.onBeforeRequest?.(req);
      },
      onProgress: (sent, total) => {
        progress.push(sent);
        options.onProgress?.(sent, total);
      },
      onSuccess: () => resolve(upload.url ?? ''),
      onError: reject,
    });
  });
  upload.start();
  return { upload, requests, progress, done };
}

/** The upload id is the last path segment of the upload URL. */
export const uploadIdOf = (url: string): string => new URL(url).pathname.split('/').pop() ?? '';

/**
 * A network cut at a known byte: PATCHes `data` from `offset`, sends `bytes` bytes, then stalls like a dead
 * link. `cut()` (once the server has the bytes) destroys the socket.
 */
export function stalledPatch(
  url: string,
  headers: Record<string, string>,
  data: Buffer,
  offset: number,
  bytes: number,
): { cut(): void; settled: Promise<unknown> } {
  const request = http.request(url, {
    method: 'PATCH',
    headers: {
      ...headers,
      'Tus-Resumable': '1.0.0',
      'Upload-Offset': String(offset),
      'Content-Type': 'application/offset+octet-stream',
      // the whole rest of the file is announced; only `bytes` of it ever come
      'Content-Length': String(data.length - offset),
    },
  });
  const settled = new Promise<unknown>((resolve) => {
    request.on('error', resolve);
    request.on('close', () => resolve(undefined));
  });
  request.write(data.subarray(offset, offset + bytes));
  return { cut: () => request.destroy(), settled };
}

/** The answer to a raw PATCH: its status, the Upload-Offset it gave (if any) and its text. */
export interface PatchAnswer {
  status: number;
  offset: number | undefined;
  text: string;
}

/**
 * A PATCH whose body is sent piece by piece (one Content-Length for all of them), calling `after(i)` once piece i
 * is written and waiting for it before the next: a client whose link pauses at known bytes.
 */
export function pausingPatch(
  url: string,
  headers: Record<string, string>,
  offset: number,
  pieces: Buffer[],
  after: (index: number) => Promise<void>,
): Promise<PatchAnswer> {
  return new Promise<PatchAnswer>((resolve, reject) => {
    const request = http.request(url, {
      method: 'PATCH',
      headers: {
        ...headers,
        'Tus-Resumable': '1.0.0',
        'Upload-Offset': String(offset),
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(pieces.reduce((sum, piece) => sum + piece.length, 0)),
      },
    });
    request.on('error', reject);
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const answered = response.headers['upload-offset'];
        resolve({
          status: response.statusCode ?? 0,
          offset: answered === undefined ? undefined : Number(answered),
          text: Buffer.concat(chunks).toString(),
        });
      });
    });
    void (async () => {
      for (const [index, piece] of pieces.entries()) {
        if (!request.write(piece)) await new Promise((drained) => request.once('drain', drained));
        await after(index);
      }
      request.end();
    })().catch((error: unknown) => {
      request.destroy();
      reject(error);
    });
  });
}

/** An upload created with a raw POST, and raw PATCHes of slices of its data. */
export interface RawUpload {
  url: string;
  id: string;
  /** PATCHes data[from, to) at offset `from`. */
  patch(from: number, to: number, extra?: Record<string, string>): Promise<Response>;
}

export async function createRawUpload(
  baseUrl: string,
  headers: Record<string, string>,
  data: Buffer<ArrayBuffer>,
  creation: Record<string, string> = { 'Upload-Length': String(data.length) },
): Promise<RawUpload> {
  const tus = { ...headers, 'Tus-Resumable': '1.0.0' };
  const created = await fetch(`${baseUrl}/files/`, { method: 'POST', headers: { ...tus, ...creation } });
  if (created.status !== 201) throw new Error(`POST answered ${created.status}: ${await created.text()}`);
  const url = created.headers.get('location')!;
  return {
    url,
    id: uploadIdOf(url),
    patch: (from, to, extra = {}) =>
      fetch(url, {
        method: 'PATCH',
        headers: { ...tus, ...extra, 'Upload-Offset': String(from), 'Content-Type': 'application/offset+octet-stream' },
        body: data.subarray(from, to),
      }),
  };
}
