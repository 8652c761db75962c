import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SignJWT, UnsecuredJWT, decodeJwt } from 'jose';
import { describe, expect, test } from 'vitest';
import { Authenticator, DEFAULT_TOKEN_CHECKS } from '../../src/auth/authenticator.js';
import type { FreightError } from '../../src/errors.js';

const SECRET = 'authenticator-test-secret-0123456789';
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

async function reason(authenticator: Authenticator, header: string | undefined): Promise<string> {
  try {
    await authenticator.authenticate(header);
    return 'accepted';
  } catch (error) {
    expect((error as FreightError).status).toBe(401);
    return (error as FreightError).message;
  }
}

describe('bearer tokens', () => {
  test('a valid HS256 token names its user by sub', async () => {
    const authenticator = await Authenticator.create({ mode: 'jwt', secret: SECRET });
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime('5m')
      .sign(key);
    expect(await authenticator.authenticate(`Bearer ${token}`)).toEqual({ id: 'alice' });
    expect(await authenticator.authenticate(`bearer ${token}`)).toEqual({ id: 'alice' });
  });

  test('what is refused, and why', async () => {
    const authenticator = await Authenticator.create({ mode: 'jwt', secret: SECRET });
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('a')
      .setExpirationTime(now() - 60)
      .sign(key);
    const noSub = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(key);
    // Signed with the right secret: only the algorithm is wrong (HS256 is the one accepted).
    const hs512 = await new SignJWT({}).setProtectedHeader({ alg: 'HS512' }).setSubject('a').sign(key);
    const otherSecret = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('a')
      .sign(new TextEncoder().encode('another-secret-0123456789abcdefgh'));
    const unsigned = new UnsecuredJWT({ sub: 'a' }).encode();
    expect(await reason(authenticator, undefined)).toMatch(/missing Authorization/);
    expect(await reason(authenticator, 'Basic abc')).toMatch(/must be "Bearer <token>"/);
    expect(await reason(authenticator, `Bearer ${expired}`)).toBe('token expired');
    expect(await reason(authenticator, `Bearer ${noSub}`)).toMatch(/no "sub"/);
    expect(await reason(authenticator, `Bearer ${hs512}`)).toMatch(/invalid token: "alg"/);
    expect(await reason(authenticator, `Bearer ${otherSecret}`)).toMatch(
      /invalid token: signature verification failed/,
    );
    expect(await reason(authenticator, `Bearer ${unsigned}`)).toMatch(/invalid token/);
    expect(await reason(authenticator, 'Bearer a.b.c')).toMatch(/invalid token/);
  });

  test('issued tokens verify and expire', async () => {
    const authenticator = await Authenticator.create({ mode: 'jwt', secret: SECRET });
    expect(await authenticator.authenticate(`Bearer ${await authenticator.issue('bob', 60)}`)).toEqual({ id: 'bob' });
    expect(await reason(authenticator, `Bearer ${await authenticator.issue('bob', -60)}`)).toBe('token expired');
  });

  describe('clock skew between the issuer and this server (AUTH_CLOCK_TOLERANCE)', () => {
    const tokenWith = (claims: { iat?: number; nbf?: number; exp?: number }) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('skewed').sign(key);
    const within = (toleranceSeconds: number) =>
      Authenticator.create(
        { mode: 'jwt', secret: SECRET },
        { ...DEFAULT_TOKEN_CHECKS, clockToleranceSeconds: toleranceSeconds },
      );

    test('iat and nbf up to the tolerance in the future are accepted (30 s by default)', async () => {
      const authenticator = await Authenticator.create({ mode: 'jwt', secret: SECRET });
      expect(DEFAULT_TOKEN_CHECKS.clockToleranceSeconds).toBe(30);
      for (const claims of [
        { iat: now() + 20 },
        { nbf: now() + 20 },
        { iat: now() + 20, nbf: now() + 20, exp: now() + 300 },
      ]) {
        expect(await reason(authenticator, `Bearer ${await tokenWith(claims)}`), JSON.stringify(claims)).toBe(
          'accepted',
        );
      }
    });

    test('beyond it, 401 naming the claim', async () => {
      const authenticator = await within(30);
      expect(await reason(authenticator, `Bearer ${await tokenWith({ iat: now() + 90 })}`)).toMatch(
        /^token issued in the future: its "iat" is (89|90) s ahead of this server's clock \(tolerance 30 s\)$/,
      );
      expect(await reason(authenticator, `Bearer ${await tokenWith({ nbf: now() + 90 })}`)).toMatch(
        /^token not valid yet: its "nbf" is (89|90) s ahead of this server's clock \(tolerance 30 s\)$/,
      );
      // The tolerance is the setting's, not a constant.
      const strict = await within(0);
      expect(await reason(strict, `Bearer ${await tokenWith({ iat: now() + 20 })}`)).toMatch(/"iat"/);
      expect(await reason(strict, `Bearer ${await tokenWith({ nbf: now() + 20 })}`)).toMatch(/"nbf"/);
      expect(await reason(await within(120), `Bearer ${await tokenWith({ iat: now() + 90, nbf: now() + 90 })}`)).toBe(
        'accepted',
      );
    });

    test('the same leeway applies to exp: a token expired within it still passes', async () => {
      const justExpired = `Bearer ${await tokenWith({ exp: now() - 10 })}`;
      expect(await reason(await within(30), justExpired)).toBe('accepted');
      expect(await reason(await within(0), justExpired)).toBe('token expired');
    });
  });

  describe('issuer and audience (AUTH_JWT_ISSUER, AUTH_JWT_AUDIENCE)', () => {
    const checks = { ...DEFAULT_TOKEN_CHECKS, issuer: 'https://id.example.com', audience: 'freight' };
    const tokenWith = (claims: { iss?: string; aud?: string | string[] }) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('carol').setExpirationTime('5m').sign(key);

    test('when set, iss must be the issuer and aud must name the audience; 401 naming which claim', async () => {
      const authenticator = await Authenticator.create({ mode: 'jwt', secret: SECRET }, checks);
      const iss = 'https://id.example.com';
      expect(await reason(authenticator, `Bearer ${await tokenWith({ iss, aud: 'freight' })}`)).toBe('accepted');
      expect(await reason(authenticator, `Bearer ${await tokenWith({ iss, aud: ['billing', 'freight'] })}`)).toBe(
        'accepted',
      );
      expect(await reason(authenticator, `Bearer ${await tokenWith({ aud: 'freight' })}`)).toBe(
        'token has no "iss" (issuer) claim; this server requires one',
      );
      expect(
        await reason(authenticator, `Bearer ${await tokenWith({ iss: 'https://evil.example.com', aud: 'freight' })}`),
      ).toBe('token\'s "iss" (issuer) claim is not one this server accepts');
      expect(await reason(authenticator, `Bearer ${await tokenWith({ iss })}`)).toBe(
        'token has no "aud" (audience) claim; this server requires one',
      );
      expect(await reason(authenticator, `Bearer ${await tokenWith({ iss, aud: 'billing' })}`)).toBe(
        'token\'s "aud" (audience) claim is not one this server accepts',
      );
    });

    test('when unset, iss and aud are not looked at', async () => {
      const authenticator = await Authenticator.create({ mode: 'jwt', secret: SECRET });
      expect(await reason(authenticator, `Bearer ${await tokenWith({})}`)).toBe('accepted');
      expect(await reason(authenticator, `Bearer ${await tokenWith({ iss: 'anyone', aud: 'anything' })}`)).toBe(
        'accepted',
      );
    });

    test('issued tokens carry them (npm run token)', async () => {
      const authenticator = await Authenticator.create({ mode: 'jwt', secret: SECRET }, checks);
      const token = await authenticator.issue('dave');
      expect(decodeJwt(token)).toMatchObject({ sub: 'dave', iss: 'https://id.example.com', aud: 'freight' });
      expect(await authenticator.authenticate(`Bearer ${token}`)).toEqual({ id: 'dave' });
    });
  });

  test('AUTH_DISABLED makes everyone "anonymous"', async () => {
    const authenticator = await Authenticator.create({ mode: 'disabled' });
    expect(await authenticator.authenticate(undefined)).toEqual({ id: 'anonymous' });
  });

  test('the development secret is created once and then reused', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'freight-auth-'));
    try {
      const secretFile = path.join(dir, 'nested', 'dev-jwt-secret');
      const first = await Authenticator.create({ mode: 'dev-secret', secretFile });
      const token = await first.issue('carol');
      const second = await Authenticator.create({ mode: 'dev-secret', secretFile });
      expect(await second.authenticate(`Bearer ${token}`)).toEqual({ id: 'carol' });
      expect((await readFile(secretFile, 'utf8')).trim()).toHaveLength(43);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
