/**
 * When reading a request body ends (src/tus/body.ts), on fake timers: the stall rule (fewer than UPLOAD_MIN_RATE ×
 * window bytes in a window spent waiting for the client), that time spent waiting for the server never counts,
 * how a stop request ends a flowing or a paused body, the body's limit, and Upload-Checksum.
 */
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { FreightError } from '../../src/errors.js';
import { BodyReader, type BodyOptions } from '../../src/tus/body.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** 100 B/s over a 1 s window: a window must bring 100 bytes. */
const STALL = { minRate: 100, windowMs: 1_000 };

function reading(options: Partial<BodyOptions> = {}) {
  const body = new PassThrough();
  const reader = new BodyReader(body, { stall: STALL, ...options });
  const chunks = reader.chunks();
  return { body, reader, chunks };
}

/** Reads every chunk to the end, the way a store does, while the test moves the clock. */
async function drain(chunks: AsyncGenerator<Buffer>): Promise<number> {
  let bytes = 0;
  for await (const chunk of chunks) bytes += chunk.length;
  return bytes;
}

describe('the stall rule', () => {
  test('a window spent waiting for the client that brought fewer than minRate × window bytes ends the body, keeping what came', async () => {
    const { body, reader, chunks } = reading();
    body.write(Buffer.alloc(99));
    const read = drain(chunks);
    await vi.advanceTimersByTimeAsync(999);
    expect(reader.stalled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await read).toBe(99);
    expect(reader).toMatchObject({ stalled: true, complete: false, cut: false, received: 99 });
  });

  test('a client at the rate is never stalled, however long it takes', async () => {
    const { body, reader, chunks } = reading();
    const read = drain(chunks);
    for (let second = 0; second < 30; second++) {
      body.write(Buffer.alloc(100));
      await vi.advanceTimersByTimeAsync(990);
    }
    body.end();
    expect(await read).toBe(3_000);
    expect(reader).toMatchObject({ stalled: false, complete: true, received: 3_000 });
  });

  test('time the server spends (a part slot, S3) between reads does not count against the client', async () => {
    const { body, reader, chunks } = reading();
    body.write(Buffer.alloc(10));
    expect((await chunks.next()).value).toHaveLength(10);
    // The store works for a minute before it asks for more: the body is not read meanwhile.
    await vi.advanceTimersByTimeAsync(60_000);
    body.write(Buffer.alloc(10));
    body.end();
    expect((await chunks.next()).value).toHaveLength(10);
    expect((await chunks.next()).done).toBe(true);
    expect(reader).toMatchObject({ stalled: false, complete: true, received: 20 });
  });

  test('minRate 0 turns the rule off', async () => {
    const { body, reader, chunks } = reading({ stall: { minRate: 0, windowMs: 1_000 } });
    const read = drain(chunks);
    await vi.advanceTimersByTimeAsync(3_600_000);
    body.end(Buffer.alloc(1));
    expect(await read).toBe(1);
    expect(reader).toMatchObject({ stalled: false, complete: true });
  });
});

describe('a stop request (another request wants the upload)', () => {
  test('a paused body ends at once (500 ms), what arrived kept', async () => {
    const stop = new AbortController();
    const { body, reader, chunks } = reading({ stop: stop.signal, stall: { minRate: 0, windowMs: 1_000 } });
    body.write(Buffer.alloc(7));
    const read = drain(chunks);
    await vi.advanceTimersByTimeAsync(100);
    stop.abort();
    await vi.advanceTimersByTimeAsync(499);
    expect(reader.cut).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await read).toBe(7);
    expect(reader).toMatchObject({ cut: true, complete: false, stalled: false });
  });

  test('a flowing body is read on for at most 3 s, then ends', async () => {
    const stop = new AbortController();
    const { body, reader, chunks } = reading({ stop: stop.signal });
    const read = drain(chunks);
    stop.abort();
    let sent = 0;
    for (let tick = 0; tick < 50 && !reader.cut; tick++) {
      body.write(Buffer.alloc(100));
      sent += 100;
      await vi.advanceTimersByTimeAsync(100);
    }
    const received = await read;
    expect(reader).toMatchObject({ cut: true, complete: false });
    // 3 s of 100 bytes each 100 ms, give or take the chunk in flight at the deadline.
    expect(received).toBeGreaterThanOrEqual(2_900);
    expect(received).toBeLessThanOrEqual(3_100);
    expect(sent).toBeLessThan(5_000);
  });

  test('a body that ends within the drain completes (it may well win)', async () => {
    const stop = new AbortController();
    const { body, reader, chunks } = reading({ stop: stop.signal });
    const read = drain(chunks);
    stop.abort();
    body.write(Buffer.alloc(100));
    await vi.advanceTimersByTimeAsync(200);
    body.end(Buffer.alloc(100));
    expect(await read).toBe(200);
    expect(reader).toMatchObject({ cut: false, complete: true });
  });
});

describe('limits and checksums', () => {
  test('a body past its limit is 413, and nothing past the limit is yielded', async () => {
    const { body, chunks } = reading({ limit: 10 });
    body.end(Buffer.alloc(11));
    const error = await drain(chunks).catch((caught: unknown) => caught);
    expect((error as FreightError).status).toBe(413);
  });

  test('Upload-Checksum matches only a whole body with the announced digest', async () => {
    const data = Buffer.from('hello world');
    const sha1 = (bytes: Buffer) => createHash('sha1').update(bytes).digest();

    const whole = reading({ checksum: { algorithm: 'sha1', digest: sha1(data) } });
    whole.body.end(data);
    await drain(whole.chunks);
    expect(whole.reader.checksumMatches()).toBe(true);

    const wrong = reading({ checksum: { algorithm: 'sha1', digest: sha1(Buffer.from('hello there')) } });
    wrong.body.end(data);
    await drain(wrong.chunks);
    expect(wrong.reader.checksumMatches()).toBe(false);

    const partial = reading({ checksum: { algorithm: 'sha1', digest: sha1(data) } });
    partial.body.write(data);
    const read = drain(partial.chunks);
    await vi.advanceTimersByTimeAsync(1_000);
    await read;
    expect(partial.reader.stalled).toBe(true);
    expect(partial.reader.checksumMatches()).toBe(false);
  });
});
