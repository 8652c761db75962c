import { describe, expect, test } from 'vitest';
import { backoffDelay, retrying } from '../../src/client/backoff.js';

describe('exponential backoff with full jitter', () => {
  test('the ceiling doubles per retry up to the cap; the delay is uniform below it', () => {
    const options = { baseMs: 500, capMs: 30_000 };
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 7].map((retry) =>
      backoffDelay(retry, { ...options, random: () => 0.999999 }),
    );
    expect(ceilings).toEqual([499, 999, 1999, 3999, 7999, 15999, 29999, 29999]);
    expect(backoffDelay(3, { ...options, random: () => 0 })).toBe(0);
    expect(backoffDelay(3, { ...options, random: () => 0.5 })).toBe(2000);
  });

  test('retries until success, sleeping the drawn delays', async () => {
    const slept: number[] = [];
    let calls = 0;
    const result = await retrying(
      async (attempt) => {
        calls++;
        if (attempt < 3) throw new Error(`fail ${attempt}`);
        return 'ok';
      },
      { attempts: 6, baseMs: 100, capMs: 1000, random: () => 0.5, sleep: async (ms) => void slept.push(ms) },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(4);
    expect(slept).toEqual([50, 100, 200]);
  });

  test('gives up after the last attempt, or at once when the error is not retryable', async () => {
    const sleep = async () => {};
    let calls = 0;
    await expect(
      retrying(
        async () => {
          calls++;
          throw new Error('always');
        },
        { attempts: 3, baseMs: 1, capMs: 1, sleep },
      ),
    ).rejects.toThrow('always');
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      retrying(
        async () => {
          calls++;
          throw new Error('fatal');
        },
        { attempts: 5, baseMs: 1, capMs: 1, sleep, retryable: () => false },
      ),
    ).rejects.toThrow('fatal');
    expect(calls).toBe(1);
  });
});
