/**
 * The benchmark's data: 64 MiB of random bytes repeated, each copy stamped with its index in its first 8 bytes, so
 * no two parts are alike and any byte of any offset can be told again (to check what S3 stored). Written to a file
 * for the throughput runs, or generated as a stream for uploads too large to keep on disk.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';

const BLOCK = 64 * 1024 * 1024;
const STAMP = 8;
/** How much the generated stream hands out at a time. */
const CHUNK = 1024 * 1024;

export class DataPattern {
  private readonly block = randomBytes(BLOCK);

  /** The bytes [start, end) of the data. */
  bytes(start: number, end: number): Buffer {
    const out = Buffer.allocUnsafe(end - start);
    for (let at = start; at < end; ) {
      const index = Math.floor(at / BLOCK);
      const within = at % BLOCK;
      const take = Math.min(end - at, BLOCK - within);
      this.stampedBlock(index).copy(out, at - start, within, within + take);
      at += take;
    }
    return out;
  }

  /** The first `size` bytes as a stream (1 MiB chunks; memory for one chunk at a time). */
  stream(size: number): Readable {
    let at = 0;
    const next = (): Buffer | null => {
      if (at >= size) return null;
      const within = at % BLOCK;
      const end = Math.min(size, at + CHUNK, at - within + BLOCK);
      // A block's first chunk carries its stamp: a copy. The others are views of the block past its stamp, which
      // restamping never touches.
      const chunk = within < STAMP ? this.bytes(at, end) : this.block.subarray(within, within + end - at);
      at = end;
      return chunk;
    };
    return new Readable({
      highWaterMark: CHUNK,
      read() {
        this.push(next());
      },
    });
  }

  /** A file of `size` bytes of the data under `dir` (kept between runs when its size is right). */
  async file(dir: string, size: number): Promise<string> {
    const file = path.join(dir, `data-${size}.bin`);
    if (existsSync(file) && statSync(file).size === size) return file;
    await mkdir(dir, { recursive: true });
    const handle = await open(file, 'w');
    for (let offset = 0, index = 0; offset < size; offset += BLOCK, index++) {
      await handle.write(this.stampedBlock(index), 0, Math.min(BLOCK, size - offset), offset);
    }
    await handle.close();
    return file;
  }

  private stampedBlock(index: number): Buffer {
    this.block.writeBigUInt64BE(BigInt(index), 0);
    return this.block;
  }
}
