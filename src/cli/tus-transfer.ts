/**
 * One file over standard tus 1.0 with tus-js-client: works against any tus server (creation extension). The
 * upload URL is remembered as soon as the server hands it out, before the first byte goes, so a rerun after
 * Ctrl-C or a kill asks the server for its offset (HEAD) and sends only the rest. A remembered URL the server no
 * longer knows (404/410) makes tus-js-client create a new upload.
 *
 * Memory: given a file stream (an fs.ReadStream with a path), tus-js-client reads each PATCH's bytes from disk
 * as it sends them; given any other stream it would buffer a whole chunk, which is why the default chunk stays
 * modest (32 MiB) rather than "the whole file".
 */
import { createReadStream } from 'node:fs';
import { DetailedError, Upload, type HttpRequest } from 'tus-js-client';
import { backoffDelay } from '../client/backoff.js';
import { MiB } from '../config/units.js';
import { UPLOAD_STATUS_HEADER } from '../tus/awaiting.js';
import type { FileProgress } from './progress.js';
import {
  TransferError,
  authorizationFor,
  retryableStatus,
  withRetries,
  type Transfer,
  type TransferResult,
  type TransferSettings,
} from './transfer.js';
import type { LocalFile } from './upload-state.js';

export const DEFAULT_TUS_CHUNK = 32 * MiB;

/** tus-js-client's own retries of one request (then the whole file is tried again: withRetries). */
const TUS_REQUEST_RETRY = { attempts: 6, baseMs: 500, capMs: 15_000 };

/** tus-js-client takes its waits as a list: one full-jitter draw per retry, exponentially growing. */
function jitteredDelays(settings: { attempts: number; baseMs: number; capMs: number }): number[] {
  return Array.from({ length: settings.attempts - 1 }, (_, n) => backoffDelay(n, settings));
}

/**
 * Why a request to an upload URL on another origin was refused: it went without the token, on purpose.
 * "PATCH https://elsewhere/files/abc: 401 …" alone would read like a bad token.
 */
function offOriginNote(url: string, status: number, settings: TransferSettings): string {
  if ((status !== 401 && status !== 403) || !settings.token || authorizationFor(url, settings)) return '';
  return ` (the server sent this upload to ${new URL(url).origin}; the token is only sent to ${new URL(settings.server).origin})`;
}

/** "PATCH http://…/files/abc: 401 ERR_UNAUTHORIZED: token expired", or the network error underneath. */
function describe(error: Error | DetailedError, settings: TransferSettings): TransferError {
  if (!(error instanceof DetailedError)) return new TransferError(error.message, undefined, true);
  const response = error.originalResponse;
  const request = error.originalRequest;
  const where = request ? `${request.getMethod()} ${request.getURL()}` : 'tus';
  if (!response) {
    const cause = error.causingError?.message ?? error.message;
    return new TransferError(`${where}: ${cause}`, undefined, true);
  }
  const status = response.getStatus();
  const body = response.getBody()?.trim().split('\n')[0]?.slice(0, 300) ?? '';
  const note = request ? offOriginNote(request.getURL(), status, settings) : '';
  return new TransferError(`${where}: ${status}${body ? ` ${body}` : ''}${note}`, status, retryableStatus(status));
}

export const tusTransfer: Transfer = async ({ file, key, progress, signal }, settings) => {
  // tus-js-client retries each request on its own schedule; when it gives up, the file is tried again (resuming
  // from the saved URL) on the longer one of the command.
  // The offset the server held when this run first took the file up (later attempts continue from further on).
  const firstOffset: { bytes?: number } = {};
  const result = await withRetries(
    () => attempt(file, progress, signal, settings, key, firstOffset),
    progress,
    settings.retry,
    signal,
  );
  await settings.state.forget(key);
  return result;
};

async function attempt(
  file: LocalFile,
  progress: FileProgress,
  signal: AbortSignal,
  settings: TransferSettings,
  key: string,
  firstOffset: { bytes?: number },
): Promise<TransferResult> {
  const saved = await settings.state.load(key);
  let saving: Promise<void> = Promise.resolve();

  const upload = await new Promise<Upload>((resolve, reject) => {
    const upload: Upload = new Upload(createReadStream(file.realPath), {
      endpoint: settings.tusEndpoint,
      uploadUrl: saved?.uploadUrl ?? null,
      uploadSize: file.size,
      chunkSize: settings.chunkSize ?? DEFAULT_TUS_CHUNK,
      // No `headers` option: tus-js-client would send those to every URL, the server's Location included.
      metadata: { filename: file.name, filetype: 'application/octet-stream' },
      retryDelays: jitteredDelays(TUS_REQUEST_RETRY),
      // This command keeps its own state (upload-state.ts); tus-js-client's file storage is not used.
      storeFingerprintForResuming: false,
      onShouldRetry: (error) => retryableStatus(error.originalResponse?.getStatus()),
      onUploadUrlAvailable: () => {
        const url = upload.url;
        if (!url || url === saved?.uploadUrl) return;
        saving = settings.state.save({
          fingerprint: key,
          file: file.realPath,
          size: file.size,
          mtimeMs: file.mtimeMs,
          server: settings.tusEndpoint,
          protocol: 'tus',
          uploadUrl: url,
          createdAt: new Date().toISOString(),
        });
      },
      onBeforeRequest: async (request: HttpRequest) => {
        // The token for the endpoint's origin only, decided per request: the upload URL is the server's choice.
        const authorization = authorizationFor(request.getURL(), settings);
        if (authorization) request.setHeader('Authorization', authorization);
        if (request.getMethod() !== 'PATCH') return;
        // No byte goes before the upload URL is on disk: a kill at any later moment can be resumed.
        await saving;
        firstOffset.bytes ??= Number(request.getHeader('Upload-Offset') ?? 0);
        if (progress.state === 'retrying') progress.state = 'uploading';
      },
      onProgress: (sent) => progress.update(sent),
      onSuccess: () => resolve(upload),
      onError: (error) => reject(describe(error, settings)),
    });
    const stop = () => {
      void upload.abort(false);
      reject(signal.reason);
    };
    if (signal.aborted) return stop();
    signal.addEventListener('abort', stop, { once: true });
    upload.start();
  });

  const url = upload.url!;
  const { awaitingApproval } = await confirmComplete(url, settings, file.size, signal);
  return {
    id: new URL(url).pathname.split('/').filter(Boolean).pop() ?? url,
    url,
    resumedFrom: firstOffset.bytes ?? file.size,
    awaitingApproval,
  };
}

/**
 * Asks the server (HEAD, standard tus) whether it holds the whole upload: only then is the file counted as
 * completed. Freight answers a HEAD from the assembled upload's state, so this also tells the object exists, and
 * whether its pre-finish check still has to approve it (`Freight-Upload-Status: awaiting_approval`).
 */
async function confirmComplete(
  url: string,
  settings: TransferSettings,
  size: number,
  signal: AbortSignal,
): Promise<{ awaitingApproval: boolean }> {
  const authorization = authorizationFor(url, settings);
  const res = await fetch(url, {
    method: 'HEAD',
    headers: { 'Tus-Resumable': '1.0.0', ...(authorization ? { Authorization: authorization } : {}) },
    signal,
  });
  const offset = Number(res.headers.get('upload-offset'));
  if (!res.ok || offset !== size) {
    throw new TransferError(
      `HEAD ${url}: ${res.status}, the server holds ${offset} of ${size} bytes${offOriginNote(url, res.status, settings)}`,
      res.status,
      retryableStatus(res.status),
    );
  }
  return { awaitingApproval: res.headers.get(UPLOAD_STATUS_HEADER) === 'awaiting_approval' };
}
