/**
 * The Uppy side of the page: a Dashboard to pick or drop files, pause, resume, retry and remove them, and one
 * uploader at a time, tus (through Freight) or AWS S3 multipart (straight to the bucket, signed by Freight's
 * Companion-shaped /s3/multipart routes). Files that fail are retried with backoff and full jitter, at once when
 * the browser comes back online.
 */
import AwsS3 from '@uppy/aws-s3';
import Uppy, { type UppyFile } from '@uppy/core';
import Dashboard from '@uppy/dashboard';
import Tus from '@uppy/tus';
import { forget, forgetUploadId, recall, remember } from './direct-resume.js';
import { authHeaders, onGone } from './session.js';

export type Mode = 'tus' | 'direct';
// biome-ignore lint/suspicious/noExplicitAny: Uppy's metadata and response bodies are free-form here.
type File = UppyFile<any, any>;

/** tus-js-client's waits between attempts of one request; then the page's own retries take over. */
const TUS_RETRY_DELAYS = [0, 1_000, 3_000, 5_000, 10_000, 20_000];
const RETRY = { attempts: 8, baseMs: 1_000, capMs: 30_000 };

export interface Uploader {
  uppy: Uppy;
  mode(): Mode;
  setMode(mode: Mode): void;
  /** Whether any file is being sent right now. */
  busy(): boolean;
}

export function createUploader(options: { target: HTMLElement; user: () => string; onChange(): void }): Uploader {
  const uppy = new Uppy({ autoProceed: false, allowMultipleUploadBatches: true });
  uppy.use(Dashboard, {
    inline: true,
    target: options.target,
    width: '100%',
    height: 340,
    theme: 'light',
    proudlyDisplayPoweredByUppy: false,
    note: 'Any size, any type. Pause, resume and retry each file here; a reload loses nothing already sent.',
  });

  let mode: Mode = 'tus';
  const useMode = (next: Mode) => {
    const current = uppy.getPlugin(mode === 'tus' ? 'Tus' : 'AwsS3');
    if (current) uppy.removePlugin(current);
    mode = next;
    if (next === 'tus') {
      uppy.use(Tus, {
        endpoint: new URL('/files/', location.href).href,
        headers: () => authHeaders(),
        retryDelays: TUS_RETRY_DELAYS,
        removeFingerprintOnSuccess: true,
        limit: 4,
      });
    } else {
      uppy.use(AwsS3, { companionEndpoint: location.origin, shouldUseMultipart: true, limit: 4 });
    }
  };
  useMode('tus');

  // Direct: give a file re-added after a reload the multipart upload it had, and remember new ones.
  uppy.addPreProcessor(async (fileIDs) => {
    if (mode !== 'direct') return;
    for (const id of fileIDs) {
      const file = uppy.getFile(id);
      const stored = recall(options.user(), id);
      if (file && !file.s3Multipart && stored) uppy.setFileState(id, { s3Multipart: stored });
    }
  });
  const rememberMultipart = (file: File | undefined) => {
    const state = file && uppy.getFile(file.id)?.s3Multipart;
    if (file && state) remember(options.user(), file.id, state);
  };
  uppy.on('upload-progress', (file) => rememberMultipart(file));
  uppy.on('s3-multipart:part-uploaded', (file) => rememberMultipart(file));
  uppy.on('upload-success', (file) => {
    if (file) forget(options.user(), file.id);
    attempts.delete(file?.id ?? '');
  });
  uppy.on('file-removed', (file) => forget(options.user(), file.id));
  // An upload the server no longer has (aborted, expired): forget it, so the next try starts a new one.
  onGone((url) => {
    const match = /^\/s3\/multipart\/([^/]+)/.exec(url.pathname);
    if (!match?.[1]) return;
    const uploadId = decodeURIComponent(match[1]);
    forgetUploadId(uploadId);
    for (const file of uppy.getFiles()) {
      if (file.s3Multipart?.uploadId === uploadId) uppy.setFileState(file.id, { s3Multipart: undefined });
    }
  });

  // Retries of whole files: at once when the network is back, else after a backoff with full jitter.
  const attempts = new Map<string, number>();
  const retry = (id: string) => {
    if (uppy.getFile(id)?.error) void uppy.retryUpload(id);
  };
  uppy.on('upload-error', (file, error) => {
    if (!file) return;
    if (/\b401\b|refused/i.test(String(error?.message))) return; // the sign-in banner says what to do
    const n = attempts.get(file.id) ?? 0;
    if (n >= RETRY.attempts) return;
    attempts.set(file.id, n + 1);
    if (!navigator.onLine) {
      window.addEventListener('online', () => retry(file.id), { once: true });
      return;
    }
    const delay = Math.floor(Math.random() * Math.min(RETRY.capMs, RETRY.baseMs * 2 ** n));
    setTimeout(() => retry(file.id), delay);
  });
  window.addEventListener('online', () => {
    for (const file of uppy.getFiles()) if (file.error) retry(file.id);
  });

  for (const event of [
    'upload',
    'upload-progress',
    'upload-success',
    'upload-error',
    'complete',
    'file-added',
    'file-removed',
    'upload-pause',
  ] as const) {
    uppy.on(event, () => options.onChange());
  }

  return {
    uppy,
    mode: () => mode,
    setMode: useMode,
    busy: () =>
      uppy.getFiles().some((file) => file.progress.uploadStarted && !file.progress.uploadComplete && !file.error),
  };
}
