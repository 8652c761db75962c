/**
 * Where an upload's bytes live in the bucket while it is written, and the arithmetic of its parts.
 *
 * Every part but the last is exactly `partSize` bytes (R2 refuses anything else), planned when the upload was
 * created, whatever the sizes of the PATCHes that bring the bytes. A PATCH that ends inside a part leaves the
 * bytes since the part's start "staged" under `<key>.staging/`: in a staging multipart upload of that part
 * (segments of at least 5 MiB) and, for fewer than 5 MiB, one tail object named by the range it holds.
 * When the part is full, the staging upload is completed and copied into the upload's own multipart upload by
 * S3 itself (UploadPartCopy), so the bytes cross this server's link to S3 once.
 */
import { S3_LIMITS } from '../../config/index.js';

/** "Each part must be at least 5 MB in size, except the last part": the smallest staged segment. */
export const MIN_SEGMENT = S3_LIMITS.minPartSize;

/**
 * The smallest segment a part larger than it is sent in (writer.ts): S3_PART_SIZE if larger. Each piece on temp
 * disk, and each send holding a part slot, is at most one segment; 16 MiB keeps the requests per GiB few (64)
 * while a client at UPLOAD_MIN_RATE (16 KiB/s) fills one in 17 minutes, not the hours a 524 MiB part takes.
 */
export const SEGMENT_FLOOR = 16 * 1024 * 1024;

export const stagingPrefix = (key: string): string => `${key}.staging/`;
/** The staging multipart upload of a part, and the object it becomes. */
export const stagingKey = (key: string, partNumber: number): string => `${stagingPrefix(key)}part-${partNumber}`;
/** A staged tail: the bytes [start, end) of the upload. The name fixes the content, so writing it twice is harmless. */
export const tailKey = (key: string, start: number, end: number): string => `${stagingPrefix(key)}tail-${start}-${end}`;

export class PartLayout {
  constructor(
    readonly partSize: number,
    /** null while the length is deferred. */
    readonly totalSize: number | null,
  ) {}

  /** The part (1-based) the byte at `offset` belongs to. */
  partAt(offset: number): number {
    return Math.floor(offset / this.partSize) + 1;
  }

  start(partNumber: number): number {
    return (partNumber - 1) * this.partSize;
  }

  /** Where the part ends: a part size later, or at the end of the upload. */
  end(partNumber: number): number {
    const end = partNumber * this.partSize;
    return this.totalSize === null ? end : Math.min(end, this.totalSize);
  }
}
