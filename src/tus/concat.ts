/**
 * tus concatenation, what tus-js-client's `parallelUploads` rests on: partial uploads are created like any other
 * (with Upload-Concat: partial, recorded on the row; routes/post.ts), and a final upload is made of them. It is assembled in the background, under its lock, by the store
 * (S3 joins the partials itself where it can); until it is, it is `pending` and a HEAD shows no offset.
 * An assembly cut short (a crash) is taken up again when an instance starts.
 */
import { randomUUID } from 'node:crypto';
import type { Locker } from '@tus/utils';
import type { FastifyBaseLogger } from 'fastify';
import type { FileUpload } from '../db/schema.js';
import { badRequest, failureReason, notFound, payloadTooLarge } from '../errors.js';
import { sumOfSizes } from '../uploads/parts.js';
import type { UploadService } from '../uploads/service.js';
import { isUploadId } from '../db/ids.js';
import { fileFacts } from './metadata.js';
import type { FreightStore } from './upload-record.js';
import { isCompleted, isOpen } from '../lifecycle.js';

export interface ConcatDeps {
  uploads: UploadService;
  store: FreightStore;
  locker: Locker;
  log: FastifyBaseLogger;
  /** Aborted when the server closes: no assembly is retried after that. */
  closing: AbortSignal;
  maxUploadSize: number;
}

/** "The partial uploads URLs MAY be absolute or relative": the upload id is the last segment of /files/<id>. */
function uploadIdOfUrl(url: string): string {
  let pathname: string;
  try {
    pathname = new URL(url, 'http://relative.invalid').pathname;
  } catch {
    throw badRequest(`Upload-Concat names "${url}", which is not a URL`);
  }
  const match = /^\/files\/([^/]+)\/?$/.exec(pathname);
  if (!match?.[1] || !isUploadId(match[1]))
    throw notFound(`Upload-Concat names "${url}", which is no upload of this server`);
  return match[1];
}

/**
 * The final upload of a concatenation (POST /files with Upload-Concat: final;<url> …), made of the caller's
 * finished partials: recorded now, assembled in the background. Returns its id.
 */
export async function createFinalUpload(
  deps: ConcatDeps,
  userId: string,
  urls: readonly string[],
  metadata: Record<string, string> | null,
): Promise<string> {
  const { uploads } = deps;
  const partials: FileUpload[] = [];
  for (const url of urls) {
    // Another user's partial upload does not exist for this one: 404.
    const partial = await uploads.access.getOwnedLive(userId, uploadIdOfUrl(url), 'tus');
    if (partial.concat !== 'partial')
      throw badRequest(`${url} is not a partial upload (created with Upload-Concat: partial)`);
    // "This concatenation request SHOULD happen after all of the corresponding partial uploads are completed";
    // concatenating unfinished ones "MUST be explicitly announced by the Server" (concatenation-unfinished),
    // which Freight does not offer.
    if (!isCompleted(partial.status))
      throw badRequest(`partial upload ${url} is not complete; concatenate finished partial uploads`);
    partials.push(partial);
  }
  // "The length of the final upload MUST be the sum of the length of all partial uploads."
  const length = sumOfSizes(partials.map((partial) => ({ size: partial.totalSize ?? 0 })));
  if (length > deps.maxUploadSize) {
    throw payloadTooLarge(
      `the partial uploads add up to ${length} bytes, over this server's maximum of ${deps.maxUploadSize}`,
    );
  }
  const id = randomUUID();
  await uploads.states.create({
    id,
    userId,
    protocol: 'tus',
    ...fileFacts(metadata),
    totalSize: length,
    storageKey: id,
    metadata,
    partSize: deps.store.partSizeFor(length),
    storedOffset: 0,
    concat: 'final',
    concatPartials: partials.map((partial) => partial.id),
  });
  void assembleFinal(deps, id);
  return id;
}

type AssemblyDeps = Pick<ConcatDeps, 'uploads' | 'store' | 'locker' | 'log' | 'closing'>;

/** After an assembly failed (S3 or PostgreSQL unavailable, most likely): the next try, 5 s later, doubling to 5 min. */
const retryDelayMs = (attempt: number): number => Math.min(5_000 * 2 ** attempt, 300_000);

/**
 * Assembles a final upload (again, after a crash): under its lock, so that only one instance does. A failure
 * meanwhile (an outage of S3 or PostgreSQL, most likely) leaves it `failed` with the reason and it is tried again
 * later, until it is assembled, rejected or expired, or the server closes (the next instance to start takes it up).
 */
export async function assembleFinal(deps: AssemblyDeps, id: string, attempt = 0): Promise<void> {
  const { uploads, store, locker, log } = deps;
  // Whatever failed: the next try finds out first whether the upload still needs it (rejected, expired, done).
  const retryLater = () => {
    if (deps.closing.aborted) return;
    setTimeout(() => {
      if (!deps.closing.aborted) void assembleFinal(deps, id, attempt + 1);
    }, retryDelayMs(attempt)).unref();
  };
  const lock = locker.newLock(id);
  try {
    await lock.lock(new AbortController().signal, () => {});
  } catch (error) {
    log.warn(
      { err: error, uploadId: id },
      'final upload: could not take its lock (another instance is assembling it, or the database is down)',
    );
    retryLater();
    return;
  }
  try {
    const final = await uploads.access.getUploadForStorage(id);
    if (!isOpen(final.status) || final.concat !== 'final' || !final.concatPartials) return;
    const partials = await Promise.all(
      final.concatPartials.map((partial) => uploads.access.getUploadForStorage(partial)),
    );
    await store.concatenate(final, partials);
    log.info({ uploadId: id, partials: partials.length }, 'final upload assembled');
  } catch (error) {
    log.error({ err: error, uploadId: id, attempt }, 'final upload could not be assembled');
    await uploads.states.markFailed(id, failureReason(error)).catch(() => {});
    retryLater();
  } finally {
    await lock.unlock();
  }
}

/** At start: final uploads whose assembly did not finish (an instance died meanwhile) are assembled now. */
export async function resumeAssemblies(deps: AssemblyDeps): Promise<void> {
  for (const final of await deps.uploads.states.unfinishedFinals()) await assembleFinal(deps, final.id);
}
