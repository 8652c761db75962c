/**
 * Bearer-token authentication: HS256 JWTs signed with AUTH_JWT_SECRET, the user id is `sub`; `exp`, `nbf` and
 * `iat` are checked with AUTH_CLOCK_TOLERANCE of leeway, `iss` and `aud` when AUTH_JWT_ISSUER/AUDIENCE are set.
 * AUTH_DISABLED=true makes every request the user "anonymous" (development only).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { AuthConfig, TokenChecks } from '../config/index.js';
import { unauthorized } from '../errors.js';

export interface User {
  id: string;
}

export const ANONYMOUS: User = { id: 'anonymous' };

/** The HMAC key, imported once (given raw bytes, jose would import them again for every token). */
async function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
    'verify',
  ]);
}

/** The defaults of AUTH_CLOCK_TOLERANCE, AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE. */
export const DEFAULT_TOKEN_CHECKS: TokenChecks = { clockToleranceSeconds: 30, issuer: undefined, audience: undefined };

/** Tokens remembered once verified (TokenCache): a bound on memory, whatever the number of users. */
export const VERIFIED_TOKENS_KEPT = 4096;

/**
 * Tokens this process verified, until their `exp`: a resume check under load verified each HMAC again (jose's
 * parse, the WebCrypto call) for a token it had seen a moment before. Keyed by the whole token, so only the exact
 * bytes verified with this server's key are found (another secret's token has another signature: another key);
 * one with no `exp` is never kept. Bounded: the oldest entry goes when a new one would pass the bound.
 */
class TokenCache {
  private readonly verified = new Map<string, { user: User; expSeconds: number }>();

  constructor(private readonly capacity: number) {}

  /** The user of `token` if it was verified and is not expired at `nowSeconds` (with the clock tolerance). */
  find(token: string, nowSeconds: number, toleranceSeconds: number): User | undefined {
    const entry = this.verified.get(token);
    if (!entry) return undefined;
    // As jose decides: expired once exp <= now - tolerance.
    if (entry.expSeconds <= nowSeconds - toleranceSeconds) {
      this.verified.delete(token);
      return undefined;
    }
    return entry.user;
  }

  keep(token: string, user: User, expSeconds: number): void {
    if (this.verified.size >= this.capacity) {
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.set(token, { user, expSeconds });
  }

  get size(): number {
    return this.verified.size;
  }
}

/** Why jose refused a token, as the 401 says it: which claim, and what was wrong with it. */
function refusal(
  error: InstanceType<typeof joseErrors.JOSEError>,
  payload: JWTPayload | undefined,
  toleranceSeconds: number,
  nowSeconds: number,
): string {
  if (error instanceof joseErrors.JWTExpired) return 'token expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    const { claim, reason } = error;
    if (claim === 'nbf' && typeof payload?.nbf === 'number') {
      return `token not valid yet: its "nbf" is ${payload.nbf - nowSeconds} s ahead of this server's clock (tolerance ${toleranceSeconds} s)`;
    }
    if (claim === 'iss' || claim === 'aud') {
      const name = claim === 'iss' ? 'issuer' : 'audience';
      return reason === 'missing'
        ? `token has no "${claim}" (${name}) claim; this server requires one`
        : `token's "${claim}" (${name}) claim is not one this server accepts`;
    }
  }
  return `invalid token: ${error.message}`;
}

export class Authenticator {
  private readonly cache = new TokenCache(VERIFIED_TOKENS_KEPT);

  private constructor(
    private readonly key: CryptoKey | undefined,
    private readonly checks: TokenChecks,
    /** The clock tokens are checked by (ms since the epoch); tests move it. */
    private readonly clock: () => number,
  ) {}

  /** Verified tokens remembered now (at most VERIFIED_TOKENS_KEPT). */
  get cachedTokens(): number {
    return this.cache.size;
  }

  get disabled(): boolean {
    return this.key === undefined;
  }

  static async create(
    auth: AuthConfig,
    checks: TokenChecks = DEFAULT_TOKEN_CHECKS,
    clock: () => number = Date.now,
  ): Promise<Authenticator> {
    switch (auth.mode) {
      case 'disabled':
        return new Authenticator(undefined, checks, clock);
      case 'jwt':
        return new Authenticator(await hmacKey(auth.secret), checks, clock);
      case 'dev-secret':
        return new Authenticator(await hmacKey(await devSecret(auth.secretFile)), checks, clock);
    }
  }

  /** The user a request acts for, from its Authorization header; throws 401 with the reason. */
  async authenticate(authorization: string | undefined): Promise<User> {
    if (this.key === undefined) return ANONYMOUS;
    if (!authorization) throw unauthorized('missing Authorization header (expected "Bearer <token>")');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1]) throw unauthorized('Authorization header must be "Bearer <token>"');
    const token = match[1];
    const { clockToleranceSeconds: tolerance, issuer, audience } = this.checks;
    const epochSeconds = () => Math.floor(this.clock() / 1000);
    const cached = this.cache.find(token, epochSeconds(), tolerance);
    if (cached) return cached;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        clockTolerance: tolerance,
        currentDate: new Date(this.clock()),
        ...(issuer === undefined ? {} : { issuer }),
        ...(audience === undefined ? {} : { audience }),
      }));
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) {
        const claims = error instanceof joseErrors.JWTClaimValidationFailed ? error.payload : undefined;
        throw unauthorized(refusal(error, claims, tolerance, epochSeconds()));
      }
      throw error;
    }
    // jose compares `iat` with the clock only when given a maximum token age: a token issued in the future
    // (further than the tolerance) is checked here.
    if (typeof payload.iat === 'number' && payload.iat > epochSeconds() + tolerance) {
      throw unauthorized(
        `token issued in the future: its "iat" is ${payload.iat - epochSeconds()} s ahead of this server's clock (tolerance ${tolerance} s)`,
      );
    }
    const { sub } = payload;
    if (typeof sub !== 'string' || sub.length === 0) throw unauthorized('token has no "sub" (user id) claim');
    const user = { id: sub };
    if (typeof payload.exp === 'number') this.cache.keep(token, user, payload.exp);
    return user;
  }

  /** A token for `userId` that expires after `ttlSeconds`, with the issuer and audience required (for `npm run token` and tests). */
  async issue(userId: string, ttlSeconds = 24 * 3600): Promise<string> {
    if (this.key === undefined) throw new Error('authentication is disabled; there is no secret to sign with');
    const token = new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(userId)
      .setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`);
    if (this.checks.issuer !== undefined) token.setIssuer(this.checks.issuer);
    if (this.checks.audience !== undefined) token.setAudience(this.checks.audience);
    return token.sign(this.key);
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
    await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return secret;
  } catch (error) {
    // Another process created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return (await readFile(file, 'utf8')).trim();
    throw error;
  }
}
