/**
 * Direct (S3 multipart) uploads resumed after a reload: @uppy/aws-s3 resumes a file whose state carries
 * `s3Multipart: {uploadId, key}` (it lists the stored parts and sends the rest), but keeps that state only in
 * memory. This keeps it in localStorage per file (Uppy's file id: name, type, size, last modification) and user,
 * from the first progress of an upload until it completes or is removed, and gives it back to the same file
 * added again after a reload. (tus needs nothing of the kind: tus-js-client stores its own fingerprints.)
 */
export interface MultipartState {
  uploadId: string;
  key: string;
}

const PREFIX = 'freight.s3multipart.';

const storageKey = (user: string, fileId: string) => `${PREFIX}${user}.${fileId}`;

export function recall(user: string, fileId: string): MultipartState | undefined {
  const text = localStorage.getItem(storageKey(user, fileId));
  if (!text) return undefined;
  try {
    const state = JSON.parse(text) as Partial<MultipartState>;
    return typeof state.uploadId === 'string' && typeof state.key === 'string'
      ? { uploadId: state.uploadId, key: state.key }
      : undefined;
  } catch {
    return undefined;
  }
}

export function remember(user: string, fileId: string, state: MultipartState): void {
  localStorage.setItem(storageKey(user, fileId), JSON.stringify({ ...state, savedAt: new Date().toISOString() }));
}

export function forget(user: string, fileId: string): void {
  localStorage.removeItem(storageKey(user, fileId));
}

/** Forgets whatever entry names this S3 upload (the server said it is gone). */
export function forgetUploadId(uploadId: string): void {
  for (let i = localStorage.length - 1; i >= 0; i--) {
    const key = localStorage.key(i);
    if (!key?.startsWith(PREFIX)) continue;
    if (localStorage.getItem(key)?.includes(JSON.stringify(uploadId))) localStorage.removeItem(key);
  }
}
