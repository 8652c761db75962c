/**
 * The saved state of a running SHA-256, as Freight stores it (`hash_state`, base64) with every offset: a format of
 * its own, so that any implementation of SHA-256 that can read out and load its intermediate value continues
 * what another one saved (native/sha256/sha256.c writes and reads the same bytes).
 *
 * Version 1, 41 to 104 bytes:
 *   byte 0        1, the version
 *   bytes 1-8     the number of bytes hashed so far, unsigned, big-endian
 *   bytes 9-40    the intermediate hash value H0..H7 after the whole 64-byte blocks (FIPS 180-4), big-endian
 *   bytes 41-     the bytes after the last whole block (the count mod 64 of them)
 *
 * States written before it (hash-wasm 4.13.0's SHA-256, 116 bytes, in databases of earlier releases) are read
 * and turned into version 1.
 */

export const STATE_VERSION = 1;
/** The bytes of a version 1 state before the bytes of the unfinished block. */
const HEAD = 41;
const BLOCK = 64;

/** hash-wasm 4.13.0's SHA-256 state: its 4-byte build tag, then its C struct `sha256_ctx` (little-endian). */
const HASH_WASM = {
  length: 116,
  /** The first 4 bytes of the SHA-1 of hash-wasm 4.13.0's SHA-256 WebAssembly, which it puts first. */
  tag: '8ed695a3',
  /** `uint32_t message[16]`: the unfinished block, as bytes. */
  message: 4,
  /** `uint64_t length`: bytes hashed. */
  count: 68,
  /** `uint32_t hash[8]`: H0..H7. */
  hash: 76,
  /** `uint32_t digest_length`: 32 for SHA-256 (28 would be SHA-224). */
  digestLength: 108,
} as const;

/** The number of bytes a version 1 state has hashed (Freight's uploads stay far below 2^53). */
export function hashedBytes(state: Uint8Array): number {
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
  return view.getUint32(1) * 2 ** 32 + view.getUint32(5);
}

/** Why `state` is not a version 1 state, or undefined when it is one. */
function invalidV1(state: Uint8Array): string | undefined {
  if (state.length < HEAD || state[0] !== STATE_VERSION) return 'not a SHA-256 state';
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
  // SHA-256 counts at most 2^64 - 1 bits; Freight never comes near 2^53 bytes.
  if (view.getUint32(1) >= 2 ** 21) return 'not a SHA-256 state (its byte count is out of range)';
  if (state.length !== HEAD + (hashedBytes(state) % BLOCK)) return 'not a SHA-256 state (its length is wrong)';
  return undefined;
}

/** A hash-wasm 4.13.0 SHA-256 state turned into version 1. */
function fromHashWasm(state: Uint8Array): Uint8Array {
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
  if (Buffer.from(state.subarray(0, 4)).toString('hex') !== HASH_WASM.tag)
    throw new Error('a hash-wasm state of another build');
  if (view.getUint32(HASH_WASM.digestLength, true) !== 32) throw new Error('a hash-wasm state of another hash');
  const count = view.getBigUint64(HASH_WASM.count, true);
  const tail = Number(count % BigInt(BLOCK));
  const out = new Uint8Array(HEAD + tail);
  const outView = new DataView(out.buffer);
  out[0] = STATE_VERSION;
  outView.setBigUint64(1, count);
  for (let i = 0; i < 8; i++) outView.setUint32(9 + 4 * i, view.getUint32(HASH_WASM.hash + 4 * i, true));
  out.set(state.subarray(HASH_WASM.message, HASH_WASM.message + tail), HEAD);
  return out;
}

/**
 * The version 1 bytes of a stored state (base64, either format), checked to be the state after `offset` bytes:
 * a state that is not one, or not of those bytes, throws (a digest that does not match its bytes must never be
 * recorded as theirs).
 */
export function decodeState(stored: string, offset: number): Uint8Array {
  const raw = new Uint8Array(Buffer.from(stored, 'base64'));
  const state = raw.length === HASH_WASM.length ? fromHashWasm(raw) : raw;
  const invalid = invalidV1(state);
  if (invalid) throw new Error(invalid);
  const hashed = hashedBytes(state);
  if (hashed !== offset) throw new Error(`the saved state is of ${hashed} bytes, not of the ${offset} stored`);
  return state;
}

/** A version 1 state as it is stored. */
export const encodeState = (state: Uint8Array): string => Buffer.from(state).toString('base64');
