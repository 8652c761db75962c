/**
 * One file straight to S3 through Freight's direct API (Freight only): the project's direct-upload client,
 * streaming each part from disk. The upload id is remembered before the first part goes; a rerun resumes it from
 * the parts S3 holds (each checked against the local bytes' MD5). A remembered upload the server no longer has
 * (404, 410: aborted, expired) is forgotten and the file starts anew. Each part is retried by the client itself;
 * a failure of the whole attempt (Freight unreachable, 503) is retried, resuming, with backoff and jitter.
 * The token goes to Freight's API only (the client joins --endpoint and a path; Node's fetch drops it on a redirect
 * to another origin); part URLs are presigned and carry none.
 */
import { DirectUploadError, uploadDirect } from '../client/direct-upload.js';
import { fileSource } from '../client/sources.js';
import { TransferError, retryableStatus, withRetries, type Transfer, type TransferResult } from './transfer.js';

function describe(error: unknown): unknown {
  if (error instanceof DirectUploadError) {
    // S3 refusing a part (4xx) after the client's own retries is worth another attempt with fresh URLs.
    const retryable = error.origin === 's3' || retryableStatus(error.status);
    // Freight's error code beside its message, as tus answers show it: "401 ERR_UNAUTHORIZED: token expired".
    const code = (error.body as { error?: unknown } | undefined)?.error;
    const message =
      typeof code === 'string'
        ? error.message.replace(`: ${error.status} `, `: ${error.status} ${code}: `)
        : error.message;
    return new TransferError(message, error.origin === 'freight' ? error.status : undefined, retryable);
  }
  if (error instanceof TransferError || (error instanceof Error && error.name === 'AbortError')) return error;
  // fetch's TypeError ("fetch failed") hides the reason (ECONNREFUSED, ENOTFOUND …) in its cause.
  const cause = (error as { cause?: { message?: string; code?: string } }).cause;
  const message = error instanceof Error ? error.message : String(error);
  return new TransferError(cause?.message ? `${message}: ${cause.message}` : message, undefined, true);
}

export const directTransfer: Transfer = async ({ file, key, progress, signal }, settings) => {
  const attempt = async (): Promise<TransferResult> => {
    const saved = await settings.state.load(key);
    const source = await fileSource(file.realPath);
    progress.update(0);
    try {
      const result = await uploadDirect({
        endpoint: settings.server,
        token: settings.token ?? '',
        source,
        filename: file.name,
        partSize: settings.chunkSize,
        concurrency: settings.parallelParts,
        resume: saved?.id ? { id: saved.id } : undefined,
        signal,
        onCreated: (id) =>
          settings.state.save({
            fingerprint: key,
            file: file.realPath,
            size: file.size,
            mtimeMs: file.mtimeMs,
            server: settings.server,
            protocol: 'direct',
            id,
            createdAt: new Date().toISOString(),
          }),
        onProgress: (bytes) => {
          progress.state = 'uploading';
          progress.update(bytes);
        },
      });
      return {
        id: result.id,
        resumedFrom: result.resumedBytes,
        awaitingApproval: result.status === 'awaiting_approval',
      };
    } catch (error) {
      if (
        saved?.id &&
        error instanceof DirectUploadError &&
        error.origin === 'freight' &&
        (error.status === 404 || error.status === 410)
      ) {
        // The upload this file was resuming is gone on the server: start it again, at once.
        await settings.state.forget(key);
        throw new TransferError(`upload ${saved.id} is gone on the server; starting anew`, error.status, true);
      }
      throw describe(error);
    } finally {
      await source.close?.();
    }
  };
  const result = await withRetries(attempt, progress, settings.retry, signal);
  await settings.state.forget(key);
  return result;
};
