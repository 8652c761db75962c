/**
 * The saved SHA-256 state (src/uploads/sha256/state.ts, version 1) across implementations: the native one
 * (OpenSSL, native/sha256) and hash-wasm 4.13.0 (what Freight used before, whose states are in databases).
 * Each hashes part of a file, saves, the other loads and finishes: always crypto.createHash's digest.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSHA256 } from 'hash-wasm';
import { describe, expect, test } from 'vitest';
import { RunningDigest } from '../../src/uploads/digest.js';
import { nativeSha256 } from '../../src/uploads/sha256/native.js';
import { decodeState, encodeState, hashedBytes } from '../../src/uploads/sha256/state.js';

const sha = nativeSha256();
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const data = randomBytes(300_000);
/** Cut points: nothing, less than a block, a block's end, every remainder mod 64 that is an edge, far in. */
const CUTS = [0, 3, 63, 64, 65, 127, 128, 4096 + 17, 200_000 - 1, 200_000];

/** The hash-wasm 4.13.0 SHA-256 state (as Freight stored it before) after `bytes`. */
async function hashWasmState(bytes: Uint8Array): Promise<string> {
  const hasher = await createSHA256();
  hasher.init();
  hasher.update(bytes);
  return Buffer.from(hasher.save()).toString('base64');
}

/**
 * A version 1 state written as hash-wasm 4.13.0's: its build tag, the unfinished block, the byte count and
 * H0..H7 little-endian, digest length 32. Only the format's documentation is used: what it says is enough.
 */
function asHashWasm(state: Uint8Array): Uint8Array {
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
  const out = new Uint8Array(116);
  const outView = new DataView(out.buffer);
  out.set(Buffer.from('8ed695a3', 'hex'), 0);
  out.set(state.subarray(41), 4);
  outView.setBigUint64(68, view.getBigUint64(1), true);
  for (let i = 0; i < 8; i++) outView.setUint32(76 + 4 * i, view.getUint32(9 + 4 * i), true);
  outView.setUint32(108, 32, true);
  return out;
}

describe('the saved SHA-256 state, version 1', () => {
  test('after "abc": version 1, 3 bytes, the initial hash value (no block yet), then "abc"', async () => {
    const context = new Uint8Array(sha.contextSize);
    sha.init(context);
    sha.update(context, Buffer.from('abc'));
    const initial = '6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19';
    const expected = Buffer.concat([
      Buffer.from([1]),
      Buffer.from('0000000000000003', 'hex'),
      Buffer.from(initial, 'hex'),
      Buffer.from('abc'),
    ]);
    expect(Buffer.from(sha.save(context)).toString('hex')).toBe(expected.toString('hex'));
    // hash-wasm's state after the same bytes reads as exactly these.
    expect(Buffer.from(decodeState(await hashWasmState(Buffer.from('abc')), 3)).toString('hex')).toBe(
      expected.toString('hex'),
    );
  });

  test.each(CUTS)(
    'hash-wasm hashes %i bytes and saves, native loads and finishes: the whole file’s digest',
    async (cut) => {
      const digest = (await RunningDigest.resume(await hashWasmState(data.subarray(0, cut)), cut))!;
      await digest.update(data.subarray(cut));
      expect(await digest.hex()).toBe(sha256(data));
      digest.close();
    },
  );

  test.each(CUTS)(
    'native hashes %i bytes and saves, hash-wasm loads and finishes: the whole file’s digest',
    async (cut) => {
      const first = (await RunningDigest.resume(null, 0))!;
      await first.update(data.subarray(0, cut));
      const state = decodeState(await first.save(), cut);
      first.close();
      expect(hashedBytes(state)).toBe(cut);
      const hasher = await createSHA256();
      hasher.load(asHashWasm(state));
      hasher.update(data.subarray(cut));
      expect(hasher.digest('hex')).toBe(sha256(data));
    },
  );

  test('a state goes through many hands: saved and loaded every few KiB, alternating implementations', async () => {
    let state: string | null = null;
    for (let at = 0, turn = 0; at < data.length; turn++) {
      const next = Math.min(data.length, at + 1 + ((at * 7919) % 9000));
      const piece = data.subarray(at, next);
      if (turn % 2 === 0) {
        const digest: RunningDigest = (await RunningDigest.resume(state, at))!;
        await digest.update(piece);
        state = await digest.save();
        digest.close();
      } else {
        const hasher = await createSHA256();
        if (state === null) hasher.init();
        else hasher.load(asHashWasm(decodeState(state, at)));
        hasher.update(piece);
        state = encodeState(decodeState(Buffer.from(hasher.save()).toString('base64'), next));
      }
      at = next;
    }
    expect(await RunningDigest.hexOf(state, data.length)).toBe(sha256(data));
  });

  test('what is not a state of the bytes stored does not load, saying why', async () => {
    const good = await (async () => {
      const digest = (await RunningDigest.resume(null, 0))!;
      await digest.update(data.subarray(0, 100));
      const saved = await digest.save();
      digest.close();
      return Buffer.from(saved, 'base64');
    })();
    const tampered = (edit: (bytes: Buffer) => void) => {
      const copy = Buffer.from(good);
      edit(copy);
      return copy.toString('base64');
    };
    expect(() => decodeState(good.toString('base64'), 100)).not.toThrow();
    expect(() => decodeState(good.toString('base64'), 101)).toThrow(
      'the saved state is of 100 bytes, not of the 101 stored',
    );
    expect(() =>
      decodeState(
        tampered((b) => (b[0] = 2)),
        100,
      ),
    ).toThrow('not a SHA-256 state');
    expect(() => decodeState(good.subarray(0, 60).toString('base64'), 100)).toThrow('its length is wrong');
    expect(() =>
      decodeState(
        tampered((b) => b.writeUInt32BE(2 ** 21, 1)),
        100,
      ),
    ).toThrow('out of range');
    const otherBuild = Buffer.from(await hashWasmState(data.subarray(0, 100)), 'base64');
    otherBuild[0] = 0;
    expect(() => decodeState(otherBuild.toString('base64'), 100)).toThrow('a hash-wasm state of another build');
    await expect(RunningDigest.resume(good.toString('base64'), 99)).rejects.toThrow(/hashing failed: the saved state/);
    await expect(
      RunningDigest.hexOf(
        tampered((b) => (b[0] = 0)),
        100,
      ),
    ).rejects.toThrow(/hashing failed/);
    // The native code checks for itself too (it is handed bytes, not trusted).
    const context = new Uint8Array(sha.contextSize);
    expect(() => sha.load(context, good.subarray(0, 50))).toThrow('not a SHA-256 state');
    expect(() => sha.load(new Uint8Array(8), good)).toThrow('not a SHA-256 context');
  });
});
