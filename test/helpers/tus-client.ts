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
