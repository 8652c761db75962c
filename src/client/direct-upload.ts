/**
 * A client for Freight's direct-to-S3 uploads (used by the tests, the benchmarks, and later the CLI and the
 * browser page): plans with the server, hashes each part (MD5, so S3 refuses corrupted bytes), gets part URLs
 * signed in batches, PUTs parts concurrently straight to S3, retries only the parts that fail (exponential
 * backoff, full jitter), resumes from what S3 already holds, and completes.
 *
 * Memory: a file source is streamed from disk, part by part (read once for its MD5, once more for the PUT), so
 * what the client holds does not grow with the part or the file size: stream buffers per part in flight. A buffer
 * source is already in memory. A stream source, which cannot be read twice, holds the parts being uploaded
 * (`concurrency`, 4 by default) and those hashed ahead (up to 4 × `concurrency`).
 */
import { createHash } from 'node:crypto';
import { putStream } from './stream-put.js';
import type { PartSource } from './sources.js';
import { DEFAULT_BACKOFF, retrying, type BackoffOptions } from './backoff.js';
import { MAX_SIGN_BATCH, PartRate, nextSignBatch } from './sign-batches.js';

export class DirectUploadError extends Error {
  constructor(
    message: string,
    /** Who answered: Freight's API or S3 (a part PUT). */
    readonly origin: 'freight' | 's3',
    readonly status: number | undefined,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'DirectUploadError';
  }
}

export interface DirectUploadOptions {
  /** Freight's base URL, e.g. http://127.0.0.1:1080 */
  endpoint: string;
  token: string | (() => string | Promise<string>);
  source: PartSource;
  filename: string;
  mimeType?: string;
  metadata?: Record<string, string>;
  /** Bytes per part; default: the server's plan. */
  partSize?: number;
  /** Parts in flight at once (default 4). */
  concurrency?: number;
  /** Continue an upload created earlier (its id, from onCreated). */
  resume?: { id: string };
  /** MD5 per part, bound into its URL (default true). */
  checksums?: boolean;
  retry?: Partial<BackoffOptions>;
  /** For calls to Freight and PUTs of parts held in memory; parts streamed from a file go through node:http(s). */
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Called once the upload exists, before any part is sent; a promise it returns is awaited. */
  onCreated?(id: string): unknown;
  onProgress?(bytesUploaded: number, bytesTotal: number): void;
}

export interface DirectUploadResult {
  id: string;
  key: string;
  location: string;
  size: number;
  /** Parts this run uploaded (not those found already stored when resuming). */
  uploadedParts: number;
  /** Bytes found already stored in S3 and kept (a resumed upload); 0 for a new one. */
  resumedBytes: number;
  /**
   * completed, or (on a server with a pre-finish check, WEBHOOK_PRE_FINISH) stored and verified but not yet
   * approved: 202 with `awaiting_approval`, decided later (GET /api/uploads/:id tells the outcome).
   */
  status: 'completed' | 'awaiting_approval';
}

interface SignedUrl {
  partNumber: number;
  url: string;
  /** When S3 stops taking the URL (ISO 8601, the server's clock). */
  expiresAt: string;
  headers: Record<string, string>;
}

/** The MD5 of the bytes [start, end) of the source: streamed when it can be, else read whole. */
async function partMd5(source: PartSource, start: number, end: number, encoding: 'base64' | 'hex'): Promise<string> {
  const hash = createHash('md5');
  if (source.stream) {
    for await (const chunk of source.stream(start, end)) hash.update(chunk as Buffer);
  } else {
    hash.update(await source.read(start, end));
  }
  return hash.digest(encoding);
}

const bareEtag = (etag: string) => etag.replace(/"/g, '');

/** A URL with less time than this left is signed again before its part is sent (clocks differ by a few seconds). */
const EXPIRY_MARGIN_MS = 15_000;

/** How long a signed URL is still good for, by this machine's clock (NaN when its answer did not say). */
const timeLeftMs = (signed: SignedUrl): number => Date.parse(signed.expiresAt) - Date.now();

/** Uploads `options.source` to S3 through Freight's direct API: start (or resume), send the parts, complete. */
export async function uploadDirect(options: DirectUploadOptions): Promise<DirectUploadResult> {
  const api = freightApi(options);
  const { id, partSize, stored } = await startUpload(api, options);
  const run: PartRun = {
    options,
    http: options.fetch ?? fetch,
    layout: partCuts(options.source.size, partSize),
    sign: async (parts) => (await api<{ parts: SignedUrl[] }>('POST', `/api/multipart/${id}/sign`, { parts })).parts,
    progress: progressReporter(options),
  };
  const { etags, todo, keptBytes } = await reuseStoredParts(run, stored);
  let uploadedParts: number;
  try {
    uploadedParts = await sendParts(run, todo, etags);
  } finally {
    await options.source.close?.();
  }
  const parts = [...etags.entries()].sort(([a], [b]) => a - b).map(([partNumber, etag]) => ({ partNumber, etag }));
  const completed = await api<{
    id: string;
    key: string;
    location: string;
    size: number;
    status: DirectUploadResult['status'];
  }>('POST', `/api/multipart/${id}/complete`, { parts });
  return { ...completed, uploadedParts, resumedBytes: keptBytes };
}

/** A call to Freight's JSON API; an answer other than 2xx is a DirectUploadError with Freight's message. */
type FreightApi = <T>(method: string, path: string, body?: unknown) => Promise<T>;

function freightApi(options: DirectUploadOptions): FreightApi {
  const http = options.fetch ?? fetch;
  return async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const token = typeof options.token === 'function' ? await options.token() : options.token;
    const res = await http(`${options.endpoint}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: options.signal,
    });
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const message = (parsed as { message?: string } | undefined)?.message ?? text;
      throw new DirectUploadError(`${method} ${path}: ${res.status} ${message}`, 'freight', res.status, parsed);
    }
    return parsed as T;
  };
}

type StoredParts = Map<number, { size: number; etag: string }>;

/** The upload to send to: created with the server's plan, or the one being resumed with what S3 already holds. */
async function startUpload(
  api: FreightApi,
  options: DirectUploadOptions,
): Promise<{ id: string; partSize: number; stored: StoredParts }> {
  const { source } = options;
  const stored: StoredParts = new Map();
  if (options.resume) {
    const { id } = options.resume;
    const state = await api<{
      size: number | null;
      partSize: number | null;
      parts: Array<{ partNumber: number; size: number; etag: string }>;
    }>('GET', `/api/multipart/${id}/parts`);
    if (state.size !== source.size || !state.partSize) {
      throw new DirectUploadError(
        `upload ${id} is ${state.size} bytes; the source has ${source.size}`,
        'freight',
        undefined,
      );
    }
    for (const part of state.parts) stored.set(part.partNumber, part);
    return { id, partSize: state.partSize, stored };
  }
  const created = await api<{ id: string; partSize: number }>('POST', '/api/multipart', {
    filename: options.filename,
    size: source.size,
    mimeType: options.mimeType,
    partSize: options.partSize,
    metadata: options.metadata,
    parts: [],
  });
  await options.onCreated?.(created.id);
  return { id: created.id, partSize: created.partSize, stored };
}

/** How the source is cut: `count` parts, part n covering bytes [start, end). */
interface PartCuts {
  count: number;
  bounds(partNumber: number): readonly [start: number, end: number];
}

function partCuts(size: number, partSize: number): PartCuts {
  return {
    count: Math.max(1, Math.ceil(size / partSize)),
    bounds: (partNumber) => [(partNumber - 1) * partSize, Math.min(partNumber * partSize, size)] as const,
  };
}

/** Counts the bytes that are in S3 (stored before or sent now) and reports them. */
function progressReporter(options: DirectUploadOptions): (bytes: number) => void {
  let uploadedBytes = 0;
  return (bytes) => {
    uploadedBytes += bytes;
    options.onProgress?.(uploadedBytes, options.source.size);
  };
}

/** What sending the parts of one upload needs. */
interface PartRun {
  options: DirectUploadOptions;
  http: typeof fetch;
  layout: PartCuts;
  sign(parts: ReadonlyArray<{ partNumber: number; md5: string | undefined }>): Promise<SignedUrl[]>;
  progress(bytes: number): void;
}

/**
 * The ETags of the parts S3 already holds that can stay (the same bytes: same MD5, or when that cannot be told,
 * at least the same size), and the part numbers still to send.
 */
async function reuseStoredParts(
  run: PartRun,
  stored: StoredParts,
): Promise<{ etags: Map<number, string>; todo: number[]; keptBytes: number }> {
  const { source } = run.options;
  const checksums = run.options.checksums ?? true;
  const etags = new Map<number, string>();
  const todo: number[] = [];
  let keptBytes = 0;
  for (let partNumber = 1; partNumber <= run.layout.count; partNumber++) {
    const [start, end] = run.layout.bounds(partNumber);
    const have = stored.get(partNumber);
    if (have && have.size === end - start) {
      const etag = bareEtag(have.etag);
      const same = !checksums || !/^[0-9a-f]{32}$/.test(etag) || (await partMd5(source, start, end, 'hex')) === etag;
      if (same) {
        etags.set(partNumber, have.etag);
        keptBytes += end - start;
        run.progress(end - start);
        continue;
      }
    }
    todo.push(partNumber);
  }
  return { etags, todo, keptBytes };
}

/**
 * A part ready to go: hashed, its URL signed (in a batch with its neighbours), its bytes kept only when the
 * source cannot be read again.
 */
interface Prepared {
  partNumber: number;
  md5: string | undefined;
  signed: SignedUrl;
  data: Uint8Array<ArrayBuffer> | undefined;
}

/**
 * Sends the `todo` parts, `concurrency` at once, recording their ETags in `etags`; returns how many it sent.
 * Workers share one generator: each next() hands out the following part. After one part fails for good, the
 * others finish what they are sending and take no more.
 */
async function sendParts(run: PartRun, todo: readonly number[], etags: Map<number, string>): Promise<number> {
  if (todo.length === 0) return 0;
  const concurrency = Math.min(run.options.concurrency ?? 4, Math.max(1, todo.length));
  const queue = preparedParts(run, todo, concurrency);
  let sent = 0;
  let failed = false;
  const worker = async () => {
    try {
      for (let item = await queue.next(); !item.done && !failed; item = await queue.next()) {
        run.options.signal?.throwIfAborted();
        const part = item.value;
        etags.set(part.partNumber, await putPart(run, part));
        sent++;
        const [start, end] = run.layout.bounds(part.partNumber);
        run.progress(end - start);
      }
    } catch (error) {
      failed = true;
      throw error;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return sent;
}

/**
 * The parts to send, in order, prepared a batch ahead of the uploads: one sign request per batch keeps the
 * server's share of the work to a few requests per GiB. Batches of a source read twice grow as the upload goes
 * (sign-batches.ts); those of a stream, whose parts are held in memory until sent, stay at twice `concurrency`.
 */
async function* preparedParts(run: PartRun, todo: readonly number[], concurrency: number): AsyncGenerator<Prepared> {
  const { source } = run.options;
  const rate = new PartRate(concurrency);
  let size = Math.min(MAX_SIGN_BATCH, source.rereadable ? Math.max(32, concurrency * 8) : concurrency * 2);
  let from = 0;
  let ahead: Promise<Prepared[]> | undefined = prepareBatch(run, todo.slice(0, size));
  while (ahead) {
    const batch: Prepared[] = await ahead;
    from += batch.length;
    if (source.rereadable) {
      const lifetimeMs = timeLeftMs(batch[0]!.signed);
      size = nextSignBatch({ current: size, partsPerSecond: rate.perSecond(), lifetimeMs, least: concurrency });
    }
    ahead = from < todo.length ? prepareBatch(run, todo.slice(from, from + size)) : undefined;
    ahead?.catch(() => {}); // awaited in its turn
    for (const part of batch) {
      rate.handOut();
      yield part;
    }
  }
}

/** Hashes the parts (when checksums are on, or their bytes must be kept) and gets their URLs in one request. */
async function prepareBatch(run: PartRun, partNumbers: readonly number[]): Promise<Prepared[]> {
  const { source } = run.options;
  const checksums = run.options.checksums ?? true;
  const hashed = [];
  for (const partNumber of partNumbers) {
    const [start, end] = run.layout.bounds(partNumber);
    if (source.rereadable) {
      // Read now for the MD5 only (streamed where the source can), and again when the part is sent.
      hashed.push({
        partNumber,
        md5: checksums ? await partMd5(source, start, end, 'base64') : undefined,
        data: undefined,
      });
    } else {
      const data = await source.read(start, end);
      hashed.push({ partNumber, md5: checksums ? createHash('md5').update(data).digest('base64') : undefined, data });
    }
  }
  const signed = await run.sign(hashed.map(({ partNumber, md5 }) => ({ partNumber, md5 })));
  return hashed.map((part, i) => ({ ...part, signed: signed[i]! }));
}

/** PUTs one part to S3, retrying with backoff (a fresh URL each retry); returns its ETag. */
async function putPart(run: PartRun, part: Prepared): Promise<string> {
  const { source, signal } = run.options;
  const [start, end] = run.layout.bounds(part.partNumber);
  // A source that streams is read again at each attempt; any other is read once and held until the part is stored.
  const data = part.data ?? (source.stream ? undefined : await source.read(start, end));
  const put = async (
    url: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; etag: string | null; text: string }> => {
    if (data) {
      const res = await run.http(url, { method: 'PUT', body: data, headers, signal });
      return { status: res.status, etag: res.headers.get('etag'), text: await res.text() };
    }
    const answer = await putStream(url, headers, source.stream!(start, end), end - start, signal);
    return {
      status: answer.status,
      etag: typeof answer.headers.etag === 'string' ? answer.headers.etag : null,
      text: answer.text,
    };
  };
  return retrying(
    async (attempt) => {
      // A retry gets a fresh URL: the old one may have expired while the part waited or failed. So does a part
      // whose URL is about to expire (a batch signed for a faster link than this one turned out to be).
      // (An expiry that does not parse says nothing: the URL is tried.)
      const fresh = attempt === 0 && !(timeLeftMs(part.signed) <= EXPIRY_MARGIN_MS);
      const signed = fresh ? part.signed : (await run.sign([{ partNumber: part.partNumber, md5: part.md5 }]))[0]!;
      const { status, etag, text } = await put(signed.url, signed.headers);
      if (status < 200 || status > 299)
        throw new DirectUploadError(
          `part ${part.partNumber}: S3 answered ${status} ${text.slice(0, 200)}`,
          's3',
          status,
        );
      if (!etag)
        throw new DirectUploadError(
          `part ${part.partNumber}: S3 sent no ETag (is it exposed by the bucket's CORS rules?)`,
          's3',
          status,
        );
      return etag;
    },
    {
      ...DEFAULT_BACKOFF,
      ...run.options.retry,
      signal,
      // A sign request Freight refuses (4xx) will not get better; anything from S3 or the network may.
      retryable: (error) =>
        !(
          error instanceof DirectUploadError &&
          error.origin === 'freight' &&
          error.status !== undefined &&
          error.status < 500
        ),
    },
  );
}
