/**
 * Where a direct upload's bytes come from: a file on disk (read again at will, streamed part by part), a buffer, or
 * a stream that can be read only once, front to back (stdin, a pipe).
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** Where the bytes come from: any range of the file, read when its part is uploaded. */
export interface PartSource {
  size: number;
  /** Whether a range can be read again (a file, a buffer), or only once in order (a stream). */
  rereadable: boolean;
  read(start: number, end: number): Promise<Uint8Array<ArrayBuffer>>;
  /**
   * The bytes [start, end) as a stream, read again at each call (a file): parts are then hashed and sent without
   * ever being held whole in memory.
   */
  stream?(start: number, end: number): Readable;
  close?(): Promise<void>;
}

/** Stream buffers of a file source: large enough for few reads per part, small beside any part. */
const FILE_STREAM_CHUNK = 1024 * 1024;

export async function fileSource(path: string): Promise<PartSource> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  return {
    size,
    rereadable: true,
    async read(start, end) {
      const buffer = Buffer.allocUnsafe(end - start);
      let filled = 0;
      while (filled < buffer.length) {
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, start + filled);
        if (bytesRead === 0) throw new Error(`${path} ended at ${start + filled}, expected ${end} bytes`);
        filled += bytesRead;
      }
      return buffer;
    },
    // A stream of its own per call (its own file descriptor): parts in flight read independently.
    stream: (start, end) => createReadStream(path, { start, end: end - 1, highWaterMark: FILE_STREAM_CHUNK }),
    // Closing twice is harmless (a caller may close what the uploader already closed).
    close: async () => {
      if (handle.fd !== -1) await handle.close();
    },
  };
}

export function bufferSource(data: Uint8Array<ArrayBuffer>): PartSource {
  return { size: data.length, rereadable: true, read: async (start, end) => data.subarray(start, end) };
}

/**
 * A stream that can only be read once, front to back (stdin, a pipe): parts are taken in order as they are
 * asked for; a part before the current position cannot be read again (so a failed part can be retried only
 * while its bytes are still held by the uploader, which it does).
 */
export function streamSource(stream: Readable, size: number): PartSource {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let position = 0;
  let pending: Buffer = Buffer.alloc(0);
  let queue = Promise.resolve();
  const take = async (start: number, end: number): Promise<Uint8Array<ArrayBuffer>> => {
    if (start < position) throw new Error(`stream source: bytes from ${start} were already consumed`);
    const out = Buffer.allocUnsafe(end - start);
    let filled = 0;
    while (position < end) {
      if (pending.length === 0) {
        const next = await iterator.next();
        if (next.done) throw new Error(`stream ended at byte ${position}, expected ${size}`);
        pending = next.value;
      }
      const skip = Math.max(0, start - position);
      if (skip >= pending.length) {
        position += pending.length;
        pending = Buffer.alloc(0);
        continue;
      }
      const chunk = pending.subarray(skip, Math.min(pending.length, skip + (end - position - skip)));
      chunk.copy(out, filled);
      filled += chunk.length;
      position += skip + chunk.length;
      pending = pending.subarray(skip + chunk.length);
    }
    return out;
  };
  return {
    size,
    rereadable: false,
    read(start, end) {
      const result = queue.then(() => take(start, end));
      queue = result.then(
        () => undefined,
        () => undefined,
      );
      return result;
    },
  };
}
