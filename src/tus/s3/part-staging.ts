/**
 * The staged start of the part a write is in, as the write sees it (writer.ts): what was recorded before the
 * write began (segments of the part's staging upload, a tail), and the segments the write sends itself.
 */
import type { StagingState } from '../../db/schema.js';
import type { StoredPart } from '../../storage/multipart.js';

export interface PartStaging {
  partNumber: number;
  /** The staging upload: the recorded one, or one created when the write sends its first segment. */
  uploadId: () => Promise<string>;
  /** Its segments in order: those recorded before the write (resolved), then those the write sends. */
  segments: Array<Promise<StoredPart>>;
  /** Segments recorded before the write: S3 must still hold them when a step over them is recorded. */
  recorded: StoredPart[];
  /** The recorded tail (read back into the write's first piece), obsolete once a step after it is recorded. */
  tail: string | undefined;
}

/** `make`, called at most once; every caller gets its promise. */
export const once = <T>(make: () => Promise<T>): (() => Promise<T>) => {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
};

/**
 * The staging of part `partNumber`: the recorded one when it is that part's, else none yet. `create` opens the
 * part's staging upload (called once, when the first segment needs it).
 */
export function partStaging(
  partNumber: number,
  recorded: StagingState | null,
  create: () => Promise<string>,
): PartStaging {
  if (!recorded || recorded.partNumber !== partNumber) {
    return { partNumber, uploadId: once(create), segments: [], recorded: [], tail: undefined };
  }
  const uploadId = recorded.uploadId;
  return {
    partNumber,
    uploadId: uploadId ? () => Promise.resolve(uploadId) : once(create),
    segments: recorded.segments.map((segment) => Promise.resolve(segment)),
    recorded: recorded.segments,
    tail: recorded.tail?.key,
  };
}

/** The recorded tail, for the first step to make obsolete (it was read back into that step's piece). */
export function takeTail(staging: PartStaging): string[] {
  const tail = staging.tail;
  staging.tail = undefined;
  return tail ? [tail] : [];
}
