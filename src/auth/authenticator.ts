/**
 * Bearer-token authentication: HS256 JWTs signed with AUTH_JWT_SECRET, the user id is `sub`, `exp` enforced.
 * AUTH_DISABLED=true makes every request the user "anonymous" (development only).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import type { AuthConfig } from '../config/index.js';
import { unauthorized } from '../errors.js';

export interface User {
  id: string;
}

export const ANONYMOUS: User = { id: 'anonymous' };

/** The HMAC key, imported once (given raw bytes, jose would import them again for every token). */
async function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
}

export class Authenticator {
  private constructor(private readonly key: CryptoKey | undefined) {}

  get disabled(): boolean {
    return this.key === undefined;
  }

  static async create(auth: AuthConfig): Promise<Authenticator> {
    switch (auth.mode) {
      case 'disabled':
        return new Authenticator(undefined);
      case 'jwt':
        return new Authenticator(await hmacKey(auth.secret));
      case 'dev-secret':
        return new Authenticator(await hmacKey(await devSecret(auth.secretFile)));
    }
  }

  /** The user a request acts for, from its Authorization header; throws 401 with the reason. */
  async authenticate(authorization: string | undefined): Promise<User> {
    if (this.key === undefined) return ANONYMOUS;
    if (!authorization) throw unauthorized('missing Authorization header (expected "Bearer <token>")');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1]) throw unauthorized('Authorization header must be "Bearer <token>"');
    let sub: unknown;
    try {
      ({ payload: { sub } } = await jwtVerify(match[1], this.key, { algorithms: ['HS256'] }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw unauthorized('token expired');
      if (error instanceof joseErrors.JOSEError) throw unauthorized(`invalid token: ${error.message}`);
      throw error;
    }
    if (typeof sub !== 'string' || sub.length === 0) throw unauthorized('token has no "sub" (user id) claim');
    return { id: sub };
  }

  /** A token for `userId` that expires after `ttlSeconds` (for `npm run token` and tests). */
  async issue(userId: string, ttlSeconds = 24 * 3600): Promise<string> {
    if (this.key === undefined) throw new Error('authentication is disabled; there is no secret to sign with');
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(userId)
      .setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`)
      .sign(this.key);
  }
}

/** The embedded-defaults secret: created once under DATA_DIR so that `npm run token` signs with the same one. */
async function devSecret(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(path.dirname(file), { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  try {
    await writeFile(file, secret + '\n', { mode: 0o600, flag: 'wx' });
    return secret;
  } catch (error) {
    // Another process created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return (await readFile(file, 'utf8')).trim();
    throw error;
  }
}
