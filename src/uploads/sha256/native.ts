/**
 * The native SHA-256 (native/sha256: OpenSSL's, inside Node), built by `npm install` / `npm ci` from source
 * (native/sha256/build.mjs). Loaded on first use; a checkout whose build is missing says how to make it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What native/sha256/sha256.c exports (its header comment says what each does). */
export interface NativeSha256 {
  /** The bytes of the context every other call takes: a Uint8Array the caller owns. */
  readonly contextSize: number;
  init(context: Uint8Array): void;
  update(context: Uint8Array, bytes: Uint8Array): void;
  /** Hashes on libuv's threadpool; context and bytes must stay untouched until `done` is called. */
  updateAsync(context: Uint8Array, bytes: Uint8Array, done: (error: Error | null) => void): void;
  /** The state, version 1 (state.ts). */
  save(context: Uint8Array): Uint8Array;
  /** Continues from a version 1 state; throws if it is not one. */
  load(context: Uint8Array, state: Uint8Array): void;
  digest(context: Uint8Array): Uint8Array;
}

const BINARY = path.join('native', 'sha256', 'build', 'Release', 'sha256.node');

/** The addon in the checkout this module is in (src/uploads/sha256 under vitest, dist/src/uploads/sha256 built). */
export function nativeBinaryPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'native', 'sha256'))) {
      return path.join(dir, BINARY);
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`native/sha256 not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

let loaded: NativeSha256 | undefined;

/** The native SHA-256; throws one line saying how to build it when it is not built. */
export function nativeSha256(): NativeSha256 {
  if (loaded) return loaded;
  const file = nativeBinaryPath();
  if (!existsSync(file)) {
    throw new Error(
      `the native SHA-256 is not built (${file} is missing): run \`npm run install\` (needs python3, make and a C compiler)`,
    );
  }
  loaded = createRequire(import.meta.url)(file) as NativeSha256;
  return loaded;
}
