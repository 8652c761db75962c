/**
 * A piece: the bytes of one part, or of one segment of it, on their way to S3 as one temp file.
 *
 * A piece may start with bytes S3 already holds (the staged tail of an earlier PATCH, fewer than 5 MiB), read
 * back into the file first. New bytes stay in memory until there are CLAIM_BYTES of them (or the body ends):
 * only then does the piece open its file. A piece takes no part slot: its bytes are counted against the
 * process's temp-disk budget (slots.ts) as they are written, and a slot is taken only to send the sealed file
 * (writer.ts). Writes go to the file in batches of WRITE_BATCH bytes.
 */
import { randomBytes } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { FileBody } from '../../storage/objects.js';
import type { PartSlots } from './slots.js';
import { StagedBytesLost } from './losses.js';

const CLAIM_BYTES = 256 * 1024;
const WRITE_BATCH = 1024 * 1024;

export interface PieceOptions {
  dir: string;
  /** Counts the piece's bytes on temp disk against the process's budget. */
  slots: PartSlots;
  /** Bytes S3 holds that come first, and how to read them. */
  prefix?: { size: number; read(): Promise<Readable> } | undefined;
}

export class Piece {
  /** Bytes in the piece, the prefix included. */
  size: number;
  /** Bytes this request added. */
  fresh = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private file: { path: string; handle: FileHandle } | undefined;
  private released = false;
  /** Bytes written to this piece's file, counted in the slots' tempBytes until the file is removed. */
  private onDisk = 0;

  constructor(
    /** The upload's part this piece belongs to (1-based). */
    readonly partNumber: number,
    /** Offset in the upload of the piece's first byte (the prefix's, if any). */
    readonly start: number,
    private readonly options: PieceOptions,
  ) {
    this.size = options.prefix?.size ?? 0;
  }

  get end(): number {
    return this.start + this.size;
  }

  async append(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.size += chunk.length;
    this.fresh += chunk.length;
    if (this.file ? this.pendingBytes >= WRITE_BATCH : this.pendingBytes >= CLAIM_BYTES) await this.flush();
  }

  /** All bytes written and the file closed: what to send to S3. */
  async seal(): Promise<FileBody> {
    await this.flush();
    if (!this.file) throw new Error('a piece without bytes cannot be sealed');
    await this.file.handle.close();
    return { path: this.file.path, size: this.size };
  }

  /** Removes the file (its bytes no longer count); safe to call more than once. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const file = this.file;
    this.file = undefined;
    this.pending = [];
    this.options.slots.releaseDisk(this.onDisk);
    this.onDisk = 0;
    if (file) {
      await file.handle.close().catch(() => {});
      await rm(file.path, { force: true });
    }
  }

  private async flush(): Promise<void> {
    if (!this.file) await this.openFile();
    const file = this.file!;
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      this.pendingBytes = 0;
      await this.write(file.handle, batch);
    }
  }

  /** Creates the file, and reads the prefix into it. */
  private async openFile(): Promise<void> {
    if (this.released) throw new Error('the piece was released');
    const filePath = path.join(this.options.dir, `part-${this.partNumber}-${randomBytes(6).toString('hex')}`);
    const handle = await open(filePath, 'w');
    this.file = { path: filePath, handle };
    const { prefix } = this.options;
    if (!prefix) return;
    let copied = 0;
    const stream = await prefix.read();
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const wanted = chunk.subarray(0, prefix.size - copied);
        await this.write(handle, [wanted]);
        copied += wanted.length;
      }
    } finally {
      stream.destroy();
    }
    if (copied !== prefix.size) {
      throw new StagedBytesLost(`the staged ${prefix.size} bytes read back as ${copied}`);
    }
  }

  private async write(handle: FileHandle, buffers: Buffer[]): Promise<void> {
    const bytes = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    // Counted before they are written (a 507 past the budget); a piece released meanwhile no longer counts.
    if (this.released) throw new Error('the piece was released');
    this.options.slots.reserveDisk(bytes);
    this.onDisk += bytes;
    await writeAll(handle, buffers);
  }
}

async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  // Many small chunks (a slow client's) are joined first: one write, never more buffers than IOV_MAX.
  let rest = buffers.length > 64 ? [Buffer.concat(buffers)] : buffers;
  while (rest.length > 0) {
    const total = rest.reduce((sum, buffer) => sum + buffer.length, 0);
    let { bytesWritten } = await handle.writev(rest);
    if (bytesWritten === total) return;
    // A short write (rare on files): continue after what was written.
    const remaining: Buffer[] = [];
    for (const buffer of rest) {
      if (bytesWritten >= buffer.length) bytesWritten -= buffer.length;
      else {
        remaining.push(buffer.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
    rest = remaining;
  }
}
