/**
 * The part planner: how an upload of a given length is cut into S3 multipart parts.
 *
 * S3 rules (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html):
 * "Part size: 5 MiB to 5 GiB. There is no minimum size limit on the last part of your multipart upload."
 * "Maximum number of parts per upload: 10,000". "Maximum object size: 5 TiB".
 */
import { S3_LIMITS } from '../config/index.js';

/**
 * max(preferred, ceil(length / maxParts)): the preferred size while it keeps the upload within maxParts parts
 * (S3_MAX_PARTS, 10,000 by default), otherwise the smallest size that does. Never below 5 MiB; the
 * configuration guarantees it stays within 5 GiB for every length up to MAX_UPLOAD_SIZE.
 */
export function planPartSize(length: number, preferred: number, maxParts: number = S3_LIMITS.maxParts): number {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`invalid upload length ${length}`);
  if (length > S3_LIMITS.maxObjectSize) {
    throw new RangeError(`an upload of ${length} bytes exceeds S3's maximum object size of ${S3_LIMITS.maxObjectSize}`);
  }
  const size = Math.max(preferred, Math.ceil(length / maxParts), S3_LIMITS.minPartSize);
  return Math.min(size, S3_LIMITS.maxPartSize);
}

export interface PlannedPart {
  partNumber: number;
  size: number;
}

/** How many parts an upload of `length` bytes takes at `partSize` (a zero-byte upload is one empty part). */
export function partCount(length: number, partSize: number): number {
  return Math.max(1, Math.ceil(length / partSize));
}

/** The size of part `partNumber` (1-based): every part is `partSize` except the last, which takes the rest. */
export function plannedPartSize(length: number, partSize: number, partNumber: number): number {
  const count = partCount(length, partSize);
  if (partNumber < 1 || partNumber > count) throw new RangeError(`part ${partNumber} is outside 1..${count}`);
  return partNumber < count ? partSize : length - partSize * (count - 1);
}

/** Checks a part size a client asked for: within S3's limits and at most `maxParts` parts for this length. */
export function partSizeProblem(
  length: number,
  partSize: number,
  maxParts: number = S3_LIMITS.maxParts,
): string | undefined {
  if (partSize < S3_LIMITS.minPartSize) return `partSize must be at least ${S3_LIMITS.minPartSize} bytes (5 MiB)`;
  if (partSize > S3_LIMITS.maxPartSize) return `partSize must be at most ${S3_LIMITS.maxPartSize} bytes (5 GiB)`;
  if (partCount(length, partSize) > maxParts) {
    return `partSize ${partSize} would need ${partCount(length, partSize)} parts; this server allows at most ${maxParts}`;
  }
  return undefined;
}
