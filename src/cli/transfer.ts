/**
 * What one file's upload needs and gives back, whichever protocol carries it, and how its failures are told
 * apart: a refusal of the whole run (the token), a refusal of this file (4xx), or a fault worth retrying.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_BACKOFF, retrying, type BackoffOptions } from '../client/backoff.js';
import type { FileProgress } from './progress.js';
import type { LocalFile, UploadState } from './upload-state.js';

export interface TransferSettings {
  /** Freight's base URL (the direct API lives under it). */
  server: string;
  /** The tus creation URL: <server>/files/ unless the endpoint named a path of its own. */
  tusEndpoint: string;
  /** Sent as `Authorization: Bearer` to the endpoint's origin only (see authorizationFor). */
  token: string | undefined;
  /** tus: bytes per PATCH. direct: bytes per part (default: the server's plan). */
  chunkSize: number | undefined;
  /** direct: parts in flight per file. */
  parallelParts: number;
  state: UploadState;
  retry: BackoffOptions;
}

export interface TransferJob {
  file: LocalFile;
  /** The file's fingerprint for this server and protocol: the name of its resume state (and of its lock). */
  key: string;
  progress: FileProgress;
  signal: AbortSignal;
}

export interface TransferResult {
  /** The upload's id on the server (the last path segment of a tus URL). */
  id: string;
  /** tus: the upload URL. */
  url?: string;
  /** Bytes the server already held when this run took the file up again; 0 for a new upload. */
  resumedFrom: number;
  /** Stored whole and verified, but the server's pre-finish check has not approved it yet (WEBHOOK_PRE_FINISH). */
  awaitingApproval: boolean;
}

export type Transfer = (job: TransferJob, settings: TransferSettings) => Promise<TransferResult>;

/**
 * A failure with the HTTP status that caused it (if any). `fatal` ends the whole run (a refused token refuses
 * every file); `retryable` is a fault that may pass (network, 5xx, 423, 429).
 */
export class TransferError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'TransferError';
  }

  get fatal(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

/**
 * The Authorization header for a request to `url`: the token goes to the origin of --endpoint (scheme, host and
 * port) and nowhere else. A server may hand out upload URLs elsewhere (a tus Location on another host, a CDN):
 * they are used without the token, so that whoever runs that origin never receives it.
 */
export function authorizationFor(url: string | URL, settings: Pick<TransferSettings, 'server' | 'token'>) {
  if (!settings.token) return undefined;
  return new URL(url).origin === new URL(settings.server).origin ? `Bearer ${settings.token}` : undefined;
}

/** Statuses worth trying again as they are: the server or something before it is busy or down. */
export function retryableStatus(status: number | undefined): boolean {
  return (
    status === undefined ||
    status === 0 ||
    status === 408 ||
    status === 409 ||
    status === 423 ||
    status === 429 ||
    status >= 500
  );
}

/** The CLI's backoff between attempts of one file: longer than the direct client's per-part retries. */
export const FILE_BACKOFF: BackoffOptions = { ...DEFAULT_BACKOFF, attempts: 8, baseMs: 1_000, capMs: 60_000 };

/**
 * Runs one file's attempts until one succeeds, a failure is not worth retrying, or the attempts run out: each
 * attempt resumes from the saved state, after a full-jitter wait the progress line shows ("retrying: in 3.2 s").
 */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  progress: FileProgress,
  retry: BackoffOptions,
  signal: AbortSignal,
): Promise<T> {
  return retrying(attempt, {
    ...retry,
    signal,
    retryable: (error) => error instanceof TransferError && error.retryable && !signal.aborted,
    sleep: async (ms) => {
      progress.state = 'retrying';
      progress.note = `in ${(ms / 1000).toFixed(1)} s`;
      await sleep(ms, undefined, { signal });
    },
  });
}
