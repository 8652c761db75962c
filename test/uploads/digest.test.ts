/** The running SHA-256 on worker threads: exact whatever the chunking, resumable from any saved state, bounded. */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { RunningDigest } from '../../src/uploads/digest.js';

const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Feeds `data` in chunks of the given sizes (cycled), waiting whenever the digest says it is behind. */
async function feed(digest: RunningDigest, data: Buffer, sizes: number[]): Promise<number> {
  let waits = 0;
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length]!;
    const behind = digest.update(data.subarray(at, at + size));
    if (behind) {
      waits++;
      await behind;
    }
    at += size;
  }
  return waits;
}

describe('RunningDigest', () => {
  test('odd chunk sizes, saved half-way and resumed in another digest: the SHA-256 of the whole', async () => {
    const data = randomBytes(5 * MiB + 12_345);
    const half = 2 * MiB + 7;
    const first = (await RunningDigest.resume(null, 0))!;
    await feed(first, data.subarray(0, half), [1, 65_536, 3 * MiB, 17]);
    const state = await first.save();
    // Saving does not end it: the first digest goes on to the same answer.
    await feed(first, data.subarray(half), [MiB + 1]);
    const second = (await RunningDigest.resume(state, half))!;
    await feed(second, data.subarray(half), [4096, 700_001]);
    expect(await second.hex()).toBe(sha256(data));
    expect(await first.hex()).toBe(sha256(data));
    expect(await RunningDigest.hexOf(state, half)).toBe(sha256(data.subarray(0, half)));
    first.close();
    second.close();
  });

  test('a writer faster than the hashing is asked to wait, and the digest is still exact', async () => {
    const data = randomBytes(64 * MiB);
    const digest = (await RunningDigest.resume(null, 0))!;
    const waits = await feed(digest, data, [MiB]);
    expect(waits).toBeGreaterThan(0);
    expect(await digest.hex()).toBe(sha256(data));
    digest.close();
  });

  test('many at once, each its own', async () => {
    const inputs = Array.from({ length: 6 }, (_, i) => randomBytes(MiB + i));
    const results = await Promise.all(
      inputs.map(async (data) => {
        const digest = (await RunningDigest.resume(null, 0))!;
        await feed(digest, data, [100_000]);
        const hex = await digest.hex();
        digest.close();
        return hex;
      }),
    );
    expect(results).toEqual(inputs.map(sha256));
  });

  test('no state past byte 0 means no digest; a state that does not load is an error', async () => {
    expect(await RunningDigest.resume(null, 10)).toBeUndefined();
    expect(await RunningDigest.hexOf(null, 10)).toBeUndefined();
    expect(await RunningDigest.hexOf(null, 0)).toBe(sha256(Buffer.alloc(0)));
    await expect(RunningDigest.resume(Buffer.from('not a state').toString('base64'), 5)).rejects.toThrow(
      /hashing failed/,
    );
  });
});
