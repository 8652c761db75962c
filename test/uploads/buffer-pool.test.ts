/** The pool of reused buffers (digest batches, whole uploads' bodies): reuse, its bound, and nothing kept at rest. */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { BufferPool } from '../../src/uploads/buffer-pool.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const IDLE_MS = 5_000;

describe('BufferPool', () => {
  beforeEach(() => void vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] }));
  afterEach(() => void vi.useRealTimers());

  test('a buffer given back is the one taken next, for its size and sizes of the same 64 KiB step', () => {
    const pool = new BufferPool(4 * MiB, IDLE_MS);
    const first = pool.take(MiB);
    expect(first.length).toBe(MiB);
    pool.give(first);
    expect(pool.bytesHeld).toBe(MiB);
    const again = pool.take(MiB - 10 * KiB);
    expect(again.length).toBe(MiB - 10 * KiB);
    expect(again.buffer).toBe(first.buffer);
    expect(pool.bytesHeld).toBe(0);
    // Another step: a buffer of its own.
    pool.give(again);
    const larger = pool.take(MiB + 1);
    expect(larger.buffer).not.toBe(first.buffer);
    expect(larger.buffer.byteLength).toBe(MiB + 64 * KiB);
  });

  test('never holds more than its capacity', () => {
    const pool = new BufferPool(3 * MiB, IDLE_MS);
    const taken = Array.from({ length: 5 }, () => pool.take(MiB));
    for (const buffer of taken) pool.give(buffer);
    expect(pool.bytesHeld).toBe(3 * MiB);
    const reused = new Set(taken.map((buffer) => buffer.buffer));
    const next = Array.from({ length: 4 }, () => pool.take(MiB));
    expect(next.filter((buffer) => reused.has(buffer.buffer as ArrayBuffer))).toHaveLength(3);
  });

  test('kept while buffers are taken, all dropped after a whole idle period without one', () => {
    const pool = new BufferPool(8 * MiB, IDLE_MS);
    pool.give(pool.take(MiB));
    for (let i = 0; i < 3; i++) {
      vi.advanceTimersByTime(IDLE_MS);
      pool.give(pool.take(MiB));
      expect(pool.bytesHeld).toBe(MiB);
    }
    // The first look after the last take still sees it; the next finds none and drops them.
    vi.advanceTimersByTime(IDLE_MS);
    expect(pool.bytesHeld).toBe(MiB);
    vi.advanceTimersByTime(IDLE_MS);
    expect(pool.bytesHeld).toBe(0);
    // And it fills again from there.
    pool.give(pool.take(2 * MiB));
    expect(pool.bytesHeld).toBe(2 * MiB);
  });
});
