import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { describe, expect, test } from 'vitest';
import { Authenticator } from '../../src/auth/authenticator.js';
import { FreightError } from '../../src/errors.js';

const SECRET = 'authenticator-test-secret-0123456789';
const key = new TextEncoder().encode(SECRET);

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
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('5m').sign(key);
    expect(await authenticator.authenticate(`Bearer ${token}`)).toEqual({ id: 'alice' });
    expect(await authenticator.authenticate(`bearer ${token}`)).toEqual({ id: 'alice' });
  });

  test('what is refused, and why', async () => {
    const authenticator = await Authenticator.create({ mode: 'jwt', secret: SECRET });
    const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setExpirationTime(Math.floor(Date.now() / 1000) - 10).sign(key);
    const noSub = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(key);
    const hs512 = await new SignJWT({}).setProtectedHeader({ alg: 'HS512' }).setSubject('a').sign(new Uint8Array(64));
    expect(await reason(authenticator, undefined)).toMatch(/missing Authorization/);
    expect(await reason(authenticator, 'Basic abc')).toMatch(/must be "Bearer <token>"/);
    expect(await reason(authenticator, `Bearer ${expired}`)).toBe('token expired');
    expect(await reason(authenticator, `Bearer ${noSub}`)).toMatch(/no "sub"/);
    expect(await reason(authenticator, `Bearer ${hs512}`)).toMatch(/invalid token/);
    expect(await reason(authenticator, 'Bearer a.b.c')).toMatch(/invalid token/);
  });

  test('issued tokens verify and expire', async () => {
    const authenticator = await Authenticator.create({ mode: 'jwt', secret: SECRET });
    expect(await authenticator.authenticate(`Bearer ${await authenticator.issue('bob', 60)}`)).toEqual({ id: 'bob' });
    expect(await reason(authenticator, `Bearer ${await authenticator.issue('bob', -1)}`)).toBe('token expired');
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
