/**
 * What S3 lost behind Freight's back (a lifecycle rule, an operator, a writer that lost its lock), told apart
 * from S3 being down, which is passed on unchanged (503, retry later).
 *
 * Staged bytes that S3 no longer holds as recorded (a staging upload or tail object removed behind Freight's
 * back, a segment overwritten by a writer that lost its lock): the offset must go back to the start of the
 * part, where the client resends from. Any other failure of the same call (S3 down) is passed on unchanged.
 */
import { isNoSuchUpload } from '../../errors.js';
import { normalizeEtag } from '../../uploads/parts.js';

/** S3 error names that mean "what you refer to is not there (as you describe it)". */
const LOST = new Set(['NoSuchUpload', 'NoSuchKey', 'InvalidPart', 'InvalidPartOrder', 'NotFound']);

export class StagedBytesLost extends Error {
  override readonly name = 'StagedBytesLost';
}

export function stagedBytesLost(error: unknown, what: string): unknown {
  const name = (error as { name?: string } | null)?.name ?? '';
  if (error instanceof StagedBytesLost) return error;
  if (isNoSuchUpload(error) || LOST.has(name))
    return new StagedBytesLost(`${what} is gone from storage (${name})`, { cause: error });
  return error;
}

/** The upload's own multipart upload is gone, and every part in it: the upload cannot be finished (410). */
export class MainUploadLost extends Error {
  override readonly name = 'MainUploadLost';
}

export function mainUploadLost(error: unknown): unknown {
  return isNoSuchUpload(error)
    ? new MainUploadLost('the multipart upload no longer exists in storage', { cause: error })
    : error;
}

/** A staged segment as recorded, and as S3 lists it (ListParts). */
interface SegmentRecord {
  partNumber: number;
  size: number;
  etag: string;
}

/**
 * Checks that a staging upload still holds the segments recorded for it: `listed` is what ListParts answered
 * (undefined: the upload is gone, aborted or already completed). A StagedBytesLost names what is missing.
 */
export function segmentsHeld(
  listed: readonly SegmentRecord[] | undefined,
  recorded: readonly SegmentRecord[],
  what: string,
): void {
  if (listed === undefined) throw new StagedBytesLost(`${what} is gone from storage (aborted or already completed)`);
  for (const want of recorded) {
    const have = listed.find((part) => part.partNumber === want.partNumber);
    if (!have || have.size !== want.size || normalizeEtag(have.etag) !== normalizeEtag(want.etag)) {
      throw new StagedBytesLost(`${what} no longer holds its segment ${want.partNumber} as recorded`);
    }
  }
}

/**
 * Why completing a staging upload failed: staged bytes lost when S3 says so, or when it no longer lists the
 * upload at all (Ceph RGW answers the completion of an aborted upload with 500 InternalError, which would
 * otherwise be retried for ever). Any other failure (S3 down) is passed on unchanged.
 */
export async function completionFailure(
  error: unknown,
  listing: () => Promise<readonly SegmentRecord[] | undefined>,
  what: string,
): Promise<unknown> {
  const lost = stagedBytesLost(error, what);
  if (lost instanceof StagedBytesLost) return lost;
  const listed = await listing().catch(() => null);
  return listed === undefined ? new StagedBytesLost(`${what} is gone from storage`, { cause: error }) : error;
}

/** A staged part joined by S3 must hold exactly the recorded bytes; anything else is not the upload's. */
export function joinedAsRecorded(joined: number | undefined, expected: number, what: string): void {
  if (joined !== expected) throw new StagedBytesLost(`the ${what} holds ${joined ?? 'no'} bytes, not ${expected}`);
}
