/** The app checks every token with the configured issuer, audience and clock tolerance, on tus and the API alike. */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { JWT_SECRET, startFreight, type RunningFreight } from '../helpers/harness.js';
import { testDatabaseUrl } from '../helpers/file-database.js';

let freight: RunningFreight;

beforeAll(async () => {
  // The test database and local files: authentication needs no S3.
  freight = await startFreight({
    DATABASE_URL: testDatabaseUrl(),
    AUTH_JWT_SECRET: JWT_SECRET,
    AUTH_JWT_ISSUER: 'https://id.example.com',
    AUTH_JWT_AUDIENCE: 'freight',
    AUTH_CLOCK_TOLERANCE: '10s',
    LOG_LEVEL: 'silent',
  });
});
afterAll(async () => {
  await freight?.close();
});

const now = () => Math.floor(Date.now() / 1000);
const token = (claims: Record<string, unknown>) =>
  new SignJWT({ iss: 'https://id.example.com', aud: 'freight', ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('erin')
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(JWT_SECRET));

async function answers(claims: Record<string, unknown>) {
  const authorization = `Bearer ${await token(claims)}`;
  const api = await fetch(`${freight.url}/api/uploads`, { headers: { Authorization: authorization } });
  const tus = await fetch(`${freight.url}/files/`, {
    method: 'POST',
    headers: { Authorization: authorization, 'Tus-Resumable': '1.0.0', 'Upload-Length': '1' },
  });
  return { api: api.status, tus: tus.status, message: ((await api.json()) as { message?: string }).message };
}

describe('token checks of the running app', () => {
  test('a token with the issuer and audience, issued within the tolerance, is accepted on tus and the API', async () => {
    expect(await answers({ iat: now() + 5 })).toMatchObject({ api: 200, tus: 201 });
  });

  test.each([
    ['from another issuer', () => ({ iss: 'https://other.example.com' }), /"iss"/],
    ['for another audience', () => ({ aud: 'billing' }), /"aud"/],
    ['issued a minute ahead', () => ({ iat: now() + 60 }), /"iat" is \d+ s ahead/],
    ['valid only from a minute ahead', () => ({ nbf: now() + 60 }), /"nbf" is \d+ s ahead/],
  ])('a token %s is 401 on tus and the API, naming the claim', async (_name, claims, message) => {
    const result = await answers(claims());
    expect(result).toMatchObject({ api: 401, tus: 401 });
    expect(result.message).toMatch(message);
  });
});
