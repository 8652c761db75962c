/**
 * A final upload joined by S3 itself (tus concatenation): each partial object, or ≤ 5 GiB ranges of it, copied
 * into the final's multipart upload with UploadPartCopy, which S3 allows when every piece but the last is at least
 * 5 MiB (copyPlan; otherwise the store streams the bytes through). The digest needs the bytes: the partials are
 * read back in order (S3 cannot hash for us) before the object is made.
 *
 * Every step finds out first whether an earlier attempt (cut short by a crash, an outage, a database that failed
 * between CompleteMultipartUpload and recording it) already did it, and goes on from there:
 *   - the final's multipart upload: the one recorded, or a new one recorded now;
 *   - each copy: skipped when S3 already lists that part at its planned size;
 *   - the completion: a multipart upload S3 no longer has, with an object of the final's length under its key,
 *     was completed by an earlier attempt: the object is hashed and its completion recorded (never NoSuchUpload
 *     for ever); without such an object the multipart upload was removed out of band, and a new one is started;
 *   - the record: the offset and the completion are idempotent (recordAssembled, and complete: markCompleted, or the pre-finish gate).
 */
import type { FileUpload } from '../../db/schema.js';
import { isNoSuchUpload } from '../../errors.js';
import { RunningDigest, hashes } from '../../uploads/digest.js';
import { sumOfSizes } from '../../uploads/parts.js';
import type { UploadService } from '../../uploads/service.js';
import { S3_LIMITS } from '../../config/index.js';
import type { S3MultipartStorage, StoredPart } from '../../storage/multipart.js';
import type { S3Objects } from '../../storage/objects.js';
import { AssemblyInterrupted } from '../upload-record.js';

/** UploadPartCopy calls in flight at once for one final upload. */
const COPIES_AT_ONCE = 4;

export interface CopyPiece {
  key: string;
  first: number;
  last: number;
}

/**
 * The copies that join `partials` in S3: each partial in as few pieces of at most 5 GiB as it takes. Undefined
 * when S3 would refuse the result: a piece other than the last under 5 MiB, or more than `maxParts` pieces.
 */
export function copyPlan(partials: readonly FileUpload[], maxParts: number): CopyPiece[] | undefined {
  const pieces: CopyPiece[] = [];
  for (const partial of partials) {
    const size = partial.totalSize ?? 0;
    if (size === 0) continue;
    const count = Math.ceil(size / S3_LIMITS.maxPartSize);
    const each = Math.ceil(size / count);
    for (let first = 0; first < size; first += each) {
      pieces.push({ key: partial.storageKey, first, last: Math.min(first + each, size) - 1 });
    }
  }
  const tooSmall = pieces.slice(0, -1).some((piece) => piece.last - piece.first + 1 < S3_LIMITS.minPartSize);
  return pieces.length === 0 || tooSmall || pieces.length > maxParts ? undefined : pieces;
}

/** `work` for each item, `limit` at a time; the results in order. */
async function inBatches<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** What the join needs of the store (its S3 layer, and the steps it shares with an ordinary completion). */
export interface JoinDeps {
  uploads: UploadService;
  multipart: S3MultipartStorage;
  objects: S3Objects;
  hashing: boolean;
  /** The upload's own multipart upload: the recorded one, or a new one recorded now. */
  mainUpload(record: FileUpload): Promise<string>;
  /** What S3 holds of an upload that will never complete, removed. */
  discard(record: FileUpload): Promise<void>;
  /** Records a completion whose object S3 holds (removing the object if the upload ended meanwhile). */
  recordCompletion(record: FileUpload, completion: () => Promise<unknown>): Promise<void>;
  /** Tags the upload's object (its SHA-256, and the tags its pre-create answer gave it). */
  tag(record: FileUpload, sha256: string | undefined): Promise<void>;
}

/** The SHA-256 of these objects' bytes in order, when the upload is hashed (UPLOAD_SHA256 or an announced digest). */
async function digestOf(deps: JoinDeps, final: FileUpload, keys: readonly string[]): Promise<string | undefined> {
  if (!hashes(deps.hashing, final.metadata)) return undefined;
  const digest = await RunningDigest.resume(null, 0);
  if (!digest) return undefined;
  try {
    for (const key of keys) {
      for await (const chunk of await deps.objects.getObject(key)) await digest.update(chunk as Buffer);
    }
    return await digest.hex();
  } finally {
    digest.close();
  }
}

/**
 * Joins `final` from `partials` by copies inside S3 along `plan`, or recognizes that an earlier attempt did. The
 * caller holds the final's lock; `stop` (its lock wanted or lost) ends the attempt between steps.
 */
export async function joinInS3(
  deps: JoinDeps,
  final: FileUpload,
  partials: readonly FileUpload[],
  plan: readonly CopyPiece[],
  stop?: AbortSignal,
): Promise<void> {
  const { objects, multipart, uploads } = deps;
  const key = final.storageKey;
  const length = sumOfSizes(plan.map((piece) => ({ size: piece.last - piece.first + 1 })));
  const checkpoint = () => {
    if (stop?.aborted) throw new AssemblyInterrupted('the assembly was asked to stop (its lock is wanted or lost)');
  };

  let uploadId = await deps.mainUpload(final);
  let listed = await multipart.listParts(key, uploadId);
  if (listed === undefined) {
    if ((await multipart.objectSize(key)) === length) {
      await recognizeJoined(deps, final, length);
      return;
    }
    // Neither the multipart upload nor its object: it was removed out of band. A new one, from the start.
    await uploads.ledger.forgetS3Upload(final.id, uploadId);
    uploadId = await deps.mainUpload({ ...final, s3UploadId: null });
    listed = [];
  }
  const done = new Map(listed.map((part) => [part.partNumber, part]));
  const parts: StoredPart[] = await inBatches(plan, COPIES_AT_ONCE, async (piece, index) => {
    const partNumber = index + 1;
    const size = piece.last - piece.first + 1;
    const copied = done.get(partNumber);
    if (copied && copied.size === size) return copied;
    checkpoint();
    return { partNumber, size, etag: await objects.copyPart(key, uploadId, partNumber, piece.key, stop, piece) };
  });
  checkpoint();
  const sha256 = await digestOf(
    deps,
    final,
    partials.map((partial) => partial.storageKey),
  );
  try {
    if (sha256 !== undefined) await uploads.states.verifyDigest(final, sha256);
  } catch (error) {
    await deps.discard({ ...final, s3UploadId: uploadId });
    throw error;
  }
  checkpoint();
  try {
    await multipart.complete(key, uploadId, parts);
  } catch (error) {
    // Completed meanwhile (an answer lost on its way back): the object is there, at its length.
    if (!isNoSuchUpload(error) || (await multipart.objectSize(key)) !== length) throw error;
  }
  await deps.recordCompletion(final, async () => {
    await uploads.ledger.recordAssembled(final.id, parts, length);
    // Through the gate (WEBHOOK_PRE_FINISH) like any upload: a refusal removes the joined object.
    await uploads.states.complete(final, length, sha256, () => deps.objects.deleteObjects([final.storageKey]));
  });
  await deps.tag(final, sha256);
}

/**
 * The final's object is in the bucket at its length, but its completion was never recorded (the database failed
 * right after CompleteMultipartUpload, or the process died): its digest is taken from the object itself, checked
 * against the announced one (a mismatch removes the object: a rejected upload has none), and recorded.
 */
async function recognizeJoined(deps: JoinDeps, final: FileUpload, length: number): Promise<void> {
  const sha256 = await digestOf(deps, final, [final.storageKey]);
  try {
    if (sha256 !== undefined) await deps.uploads.states.verifyDigest(final, sha256);
  } catch (error) {
    await deps.objects.deleteObjects([final.storageKey]);
    throw error;
  }
  await deps.recordCompletion(final, async () => {
    await deps.uploads.ledger.recordAssembled(final.id, [], length);
    await deps.uploads.states.complete(final, length, sha256, () => deps.objects.deleteObjects([final.storageKey]));
  });
  await deps.tag(final, sha256);
}
