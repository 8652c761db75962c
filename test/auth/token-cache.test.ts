/**
 * Verified tokens are remembered until their `exp` (a resume check under load no longer verifies the same HMAC
 * again), and that never lets through a token that verification would refuse: an expired one, one of another
 * secret. The clock is the authenticator's own, moved by the test.
 */
import { SignJWT } from 'jose';
import { describe, expect, test } from 'vitest';
import { Authenticator, DEFAULT_TOKEN_CHECKS, VERIFIED_TOKENS_KEPT } from '../../src/auth/authenticator.js';
import type { FreightError } from '../../src/errors.js';

const SECRET = 'token-cache-test-secret-0123456789';
const OTHER_SECRET = 'another-secret-0123456789abcdefghij';
const T0 = Date.parse('2030-01-01T00:00:00Z');
const TOLERANCE = DEFAULT_TOKEN_CHECKS.clockToleranceSeconds;

const sign = (claims: { sub: string; exp?: number; iat?: number }, secret = SECRET) => {
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.sub)
    .setIssuedAt(T0 / 1000);
  if (claims.exp !== undefined) jwt.setExpirationTime(claims.exp);
  return jwt.sign(new TextEncoder().encode(secret));
};

async function answer(authenticator: Authenticator, token: string): Promise<string> {
  try {
    return (await authenticator.authenticate(`Bearer ${token}`)).id;
  } catch (error) {
    expect((error as FreightError).status).toBe(401);
    return (error as FreightError).message;
  }
}

function clockAt(ms: number) {
  const clock = { now: ms };
  return { clock, read: () => clock.now };
}

describe('verified tokens remembered', () => {
  test('an expired token is refused even when it is cached', async () => {
    const { clock, read } = clockAt(T0);
    const authenticator = await Authenticator.create({ mode: 'jwt', secret: SECRET }, DEFAULT_TOKEN_CHECKS, read);
    const token = await sign({ sub: 'alice', exp: T0 / 1000 + 60 });
    expect(await answer(authenticator, token)).toBe('alice');
    expect(authenticator.cachedTokens).toBe(1);
    clock.now = T0 + 50_000;
    expect(await answer(authenticator, token)).toBe('alice');
    // Past exp, within the clock tolerance: still accepted, as jose would.
    clock.now = T0 + (60 + TOLERANCE - 1) * 1000;
    expect(await answer(authenticator, token)).toBe('alice');
    // Past exp and the tolerance: refused, and forgotten.
    clock.now = T0 + (60 + TOLERANCE) * 1000;
    expect(await answer(authenticator, token)).toBe('token expired');
    expect(authenticator.cachedTokens).toBe(0);
    expect(await answer(authenticator, token)).toBe('token expired');
  });

  test("another secret's token is refused, whatever this secret's tokens of the same claims are cached", async () => {
    const { read } = clockAt(T0);
    const authenticator = await Authenticator.create({ mode: 'jwt', secret: SECRET }, DEFAULT_TOKEN_CHECKS, read);
    const claims = { sub: 'alice', exp: T0 / 1000 + 3600 };
    expect(await answer(authenticator, await sign(claims))).toBe('alice');
    const forged = await sign(claims, OTHER_SECRET);
    expect(await answer(authenticator, forged)).toMatch(/invalid token: signature verification failed/);
    expect(await answer(authenticator, forged)).toMatch(/invalid token: signature verification failed/);
    // A server whose secret changed remembers nothing of the old one's tokens.
    const rotated = await Authenticator.create({ mode: 'jwt', secret: OTHER_SECRET }, DEFAULT_TOKEN_CHECKS, read);
    expect(await answer(rotated, await sign(claims))).toMatch(/invalid token: signature verification failed/);
  });

  test('a token without exp is never kept, and at most VERIFIED_TOKENS_KEPT are', async () => {
    const { read } = clockAt(T0);
    const authenticator = await Authenticator.create({ mode: 'jwt', secret: SECRET }, DEFAULT_TOKEN_CHECKS, read);
    expect(await answer(authenticator, await sign({ sub: 'forever' }))).toBe('forever');
    expect(authenticator.cachedTokens).toBe(0);
    const first = await sign({ sub: 'user-0', exp: T0 / 1000 + 3600 });
    expect(await answer(authenticator, first)).toBe('user-0');
    for (let i = 1; i < VERIFIED_TOKENS_KEPT + 10; i++) {
      await authenticator.authenticate(`Bearer ${await sign({ sub: `user-${i}`, exp: T0 / 1000 + 3600 })}`);
    }
    expect(authenticator.cachedTokens).toBe(VERIFIED_TOKENS_KEPT);
    // The first one went to make room; it is verified again.
    expect(await answer(authenticator, first)).toBe('user-0');
  });
});
