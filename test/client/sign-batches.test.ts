import { describe, expect, test } from 'vitest';
import { uploadDirect } from '../../src/client/direct-upload.js';
import { MAX_SIGN_BATCH, PartRate, nextSignBatch } from '../../src/client/sign-batches.js';
import { bufferSource } from '../../src/client/sources.js';

const MINUTE = 60_000;

describe('the size of the next sign batch', () => {
  test('stays the same while the rate is unknown', () => {
    expect(nextSignBatch({ current: 32, partsPerSecond: undefined, lifetimeMs: 15 * MINUTE, least: 4 })).toBe(32);
  });

  test('stays the same when the URLs did not say when they expire', () => {
    expect(nextSignBatch({ current: 32, partsPerSecond: 1000, lifetimeMs: Number.NaN, least: 4 })).toBe(32);
  });

  test('grows fourfold at most, and never past the API bound', () => {
    const fast = { partsPerSecond: 1000, lifetimeMs: 15 * MINUTE, least: 4 };
    expect(nextSignBatch({ current: 32, ...fast })).toBe(128);
    expect(nextSignBatch({ current: 512, ...fast })).toBe(MAX_SIGN_BATCH);
  });

  test('keeps the last URL of the next batch within half its lifetime at the rate so far', () => {
    // 1 part/s, URLs good for 15 min: 450 parts in half the lifetime, less this batch's (sent first).
    expect(nextSignBatch({ current: 128, partsPerSecond: 1, lifetimeMs: 15 * MINUTE, least: 4 })).toBe(450 - 128);
    expect(nextSignBatch({ current: 32, partsPerSecond: 1, lifetimeMs: 15 * MINUTE, least: 4 })).toBe(128);
    // 0.1 part/s: 45 parts in half the lifetime, fewer than this batch: the next shrinks to what keeps workers busy.
    expect(nextSignBatch({ current: 128, partsPerSecond: 0.1, lifetimeMs: 15 * MINUTE, least: 4 })).toBe(4);
  });
});

describe('the rate of parts', () => {
  test('counts from the moment every worker has a part', () => {
    let now = 0;
    const rate = new PartRate(4, () => now);
    for (let i = 0; i < 4; i++) rate.handOut();
    expect(rate.perSecond()).toBeUndefined();
    now = 2000;
    rate.handOut();
    rate.handOut();
    expect(rate.perSecond()).toBe(1);
  });
});

/**
 * The client against a scripted API: each sign request's part count, and the part numbers sent with URLs that were
 * signed again. A PUT answers at once with an ETag; `expiresInMs` is how long each signed URL is good for.
 */
async function scriptedUpload(parts: number, expiresInMs: number | undefined) {
  const signs: number[][] = [];
  const signedAt = new Map<number, number>();
  const data = new Uint8Array(parts);
  const json = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  const sign = (numbers: number[]) => ({
    parts: numbers.map((partNumber) => {
      signedAt.set(partNumber, (signedAt.get(partNumber) ?? 0) + 1);
      return {
        partNumber,
        url: `http://s3.test/part/${partNumber}`,
        expiresAt: expiresInMs === undefined ? '' : new Date(Date.now() + expiresInMs).toISOString(),
        headers: {},
      };
    }),
  });
  const scripted: typeof fetch = async (input, init) => {
    const url = String(input);
    if (url.endsWith('/api/multipart')) return json({ id: 'u1', partSize: 1 }, 201);
    if (url.endsWith('/sign')) {
      const body = JSON.parse(String(init?.body)) as { parts: Array<{ partNumber: number }> };
      signs.push(body.parts.map((part) => part.partNumber));
      return json(sign(body.parts.map((part) => part.partNumber)));
    }
    if (url.startsWith('http://s3.test/part/')) return new Response(null, { status: 200, headers: { etag: '"e"' } });
    if (url.endsWith('/complete')) return json({ id: 'u1', key: 'k', location: 'l', size: parts, status: 'completed' });
    throw new Error(`unexpected request ${init?.method} ${url}`);
  };
  await uploadDirect({
    endpoint: 'http://freight.test',
    token: 't',
    source: bufferSource(data),
    filename: 'f',
    checksums: false,
    fetch: scripted,
  });
  const signedAgain = [...signedAt].filter(([, times]) => times > 1).map(([partNumber]) => partNumber);
  return { batches: signs.map((batch) => batch.length), signedAgain, partsSigned: signs.flat().length };
}

describe('sign batches of a direct upload', () => {
  test('grow as the parts go, each part signed once', async () => {
    const { batches, signedAgain, partsSigned } = await scriptedUpload(700, 15 * MINUTE);
    expect(batches).toEqual([32, 32, 128, 508]);
    expect(signedAgain).toEqual([]);
    expect(partsSigned).toBe(700);
  });

  test('without an expiry in the answers, batches keep their first size and each part is signed once', async () => {
    const { batches, signedAgain } = await scriptedUpload(100, undefined);
    expect(batches).toEqual([32, 32, 32, 4]);
    expect(signedAgain).toEqual([]);
  });

  test('a URL about to expire is signed again before its part is sent, not sent to fail', async () => {
    // URLs good for 10 s, less than the margin the client keeps: every part gets a fresh URL of its own.
    const { batches, signedAgain } = await scriptedUpload(40, 10_000);
    expect(batches.slice(0, 2)).toEqual([32, 8]);
    expect(batches.slice(2).every((size) => size === 1)).toBe(true);
    expect(signedAgain).toHaveLength(40);
  });
});
