/**
 * The pre-create answer's `object`, checked against S3's rules before anything is recorded (object-shape.ts), and
 * what the pre-create check makes of an answer it refuses: a 502 for the client and a warning in the log (a real
 * receiver on loopback).
 */
import type { FastifyBaseLogger } from 'fastify';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { FreightError, toHttpAnswer } from '../../src/errors.js';
import { BadShapeAnswer, MAX_KEY_BYTES, checkShape, shapeOfAnswer } from '../../src/webhooks/object-shape.js';
import { preCreateCheck } from '../../src/webhooks/pre-create.js';
import type { NewUpload } from '../../src/uploads/service.js';
import { startReceiver, type Receiver } from './receiver.js';

const RULES = { keyPrefix: 'uploads/', tagging: true, reservedTags: ['sha256'] };
const problem = (object: unknown, rules = RULES): string => {
  try {
    checkShape(object, rules);
  } catch (error) {
    if (error instanceof BadShapeAnswer) return error.message;
    throw error;
  }
  throw new Error('accepted');
};
const json = (body: unknown) => ({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });

describe('the key', () => {
  test.each(['a.bin', 'reports/2026/q1.pdf', 'отчёт/報告 (1).pdf', 'a..b/c...d', '.hidden/x', "x!-_.*'()&$@=;:+ ,?"])(
    '%j is a key under the prefix',
    (key) => {
      expect(checkShape({ key }, RULES)).toEqual({ key, shape: {} });
    },
  );

  test.each([
    ['../x', /empty, "\." or "\.\." segment/],
    ['a/../../x', /"\.\." segment/],
    ['a/./b', /"\." or/],
    ['..', /segment/],
    ['a//b', /empty/],
    ['a/', /empty/],
    ['/abs', /must not start with "\/"/],
    ['a\\..\\b', /backslash/],
    ['a\u0000b', /control character/],
    ['a\rb', /control character/],
    ['a\u007fb', /control character/],
    ['a\u0085b', /control character/],
    ['x.staging/part-1', /holds "\.staging\/"/],
    ['a\ud800b', /not valid Unicode/],
    ['', /non-empty string/],
  ])('%j is refused', (key, reason) => {
    expect(problem({ key })).toMatch(reason);
    expect(problem({ key })).not.toMatch(/[\r\n]/);
  });

  test('bounded in UTF-8 bytes with the prefix, leaving room for the staged bytes’ names (S3: 1,024 bytes)', () => {
    const room = MAX_KEY_BYTES - Buffer.byteLength('uploads/');
    expect(checkShape({ key: 'k'.repeat(room) }, RULES).key).toHaveLength(room);
    expect(problem({ key: 'k'.repeat(room + 1) })).toMatch(/is 961 bytes with the prefix; at most 960/);
    expect(problem({ key: 'é'.repeat(room / 2 + 1) })).toMatch(/bytes with the prefix/);
    expect(problem({ key: 'k'.repeat(2000) })).toMatch(/2008 bytes/);
    expect(problem({ key: 42 })).toMatch(/non-empty string/);
  });
});

describe('what the object carries', () => {
  test('a full shape: the disposition is built (RFC 6266), everything else kept as given', () => {
    expect(
      checkShape(
        {
          contentType: 'text/csv; charset="utf-8"',
          contentDisposition: { type: 'attachment', filename: 'a "b".csv' },
          storageClass: 'STANDARD_IA',
          tags: { team: 'finance', 'Case ID': 'A-42 / 7', é: '@:+=._-' },
          metadata: { origin: 'hook', 'x_y-z': 'any printable ASCII: !"#' },
        },
        RULES,
      ),
    ).toEqual({
      shape: {
        contentType: 'text/csv; charset="utf-8"',
        contentDisposition: `attachment; filename="a _b_.csv"; filename*=UTF-8''a%20%22b%22.csv`,
        storageClass: 'STANDARD_IA',
        tags: { team: 'finance', 'Case ID': 'A-42 / 7', é: '@:+=._-' },
        metadata: { origin: 'hook', 'x_y-z': 'any printable ASCII: !"#' },
      },
    });
    expect(checkShape({ contentDisposition: 'inline' }, RULES).shape.contentDisposition).toBe('inline');
  });

  test.each([
    [{ contentType: 'text/html\r\nX-Evil: 1' }, /must be a media type/],
    [{ contentType: 'texthtml' }, /must be a media type/],
    [{ contentType: `a/${'b'.repeat(300)}` }, /at most 255/],
    [{ contentDisposition: 'form-data' }, /must be "inline", "attachment"/],
    [{ contentDisposition: { type: 'inline', filename: 'a\nb' } }, /control character/],
    [{ contentDisposition: { type: 'inline', name: 'x' } }, /unknown member "name"/],
    [{ contentDisposition: { type: 'inline', filename: 'x'.repeat(256) } }, /1 to 255 characters/],
    [{ storageClass: 'standard' }, /must be one of S3's/],
    [{ tags: { a: 1 } }, /object\.tags "a" must be a string/],
    [{ metadata: { 'a\nb': 1 } }, /object\.metadata "a\\nb" must be a string/],
    [{ tags: ['a'] }, /must be an object of string values/],
    [{ tags: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`t${i}`, 'v'])) }, /has 10 tags.*at most 9/],
    [{ tags: { sha256: 'x' } }, /set by Freight itself/],
    [{ tags: { 'aws:x': 'y' } }, /aws: prefix/],
    [{ tags: { '': 'y' } }, /must be 1 to 128/],
    [{ tags: { ['é'.repeat(129)]: 'y' } }, /must be 1 to 128/],
    [{ tags: { a: 'v'.repeat(257) } }, /at most 256/],
    [{ tags: { a: 'semi;colon' } }, /at most 256 letters/],
    [{ metadata: { 'bad name': 'x' } }, /name "bad name" must be letters/],
    [{ metadata: { a: 'été' } }, /printable ASCII/],
    [{ metadata: { a: 'x\r\ny' } }, /printable ASCII/],
    [{ metadata: { Origin: 'a', origin: 'b' } }, /names "origin" twice/],
    [{ metadata: { a: 'x'.repeat(2048) } }, /2049 bytes; S3 keeps at most 2048/],
    [{ key: 'k', extra: true }, /unknown member "extra"/],
    [['key'], /"object" must be a JSON object/],
  ])('%j is refused', (object, reason) => {
    expect(problem(object)).toMatch(reason);
    // The reason reaches the client as one line.
    expect(problem(object)).not.toMatch(/[\r\n]/);
  });

  test('ten tags without S3_TAGGING’s own; none at all when the server does not tag', () => {
    const ten = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`t${i}`, 'v']));
    expect(checkShape({ tags: ten }, { ...RULES, reservedTags: [] }).shape.tags).toEqual(ten);
    expect(problem({ tags: { a: 'b' } }, { ...RULES, tagging: false })).toMatch(/S3_TAGGING=false/);
  });
});

describe('the answer', () => {
  test('only a JSON body with `object` shapes; other bodies allow the upload as before', () => {
    expect(shapeOfAnswer({ status: 200, body: 'OK', contentType: 'text/plain' }, RULES)).toBeUndefined();
    expect(shapeOfAnswer({ status: 204, body: '', contentType: undefined }, RULES)).toBeUndefined();
    expect(shapeOfAnswer(json({ allowed: true }), RULES)).toBeUndefined();
    expect(shapeOfAnswer(json({ object: null }), RULES)).toBeUndefined();
    expect(shapeOfAnswer(json({ object: { key: 'a' } }), RULES)).toEqual({ key: 'a', shape: {} });
    expect(() =>
      shapeOfAnswer({ status: 200, body: '{"object":', contentType: 'application/json; charset=utf-8' }, RULES),
    ).toThrow(/its body is not valid JSON/);
  });
});

describe('the pre-create check, with a receiver that answers badly', () => {
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });

  const upload: NewUpload = {
    id: '00000000-0000-4000-8000-000000000000',
    userId: 'ann',
    protocol: 'tus',
    filename: 'a.bin',
    mimeType: null,
    totalSize: 10,
    storageKey: '00000000-0000-4000-8000-000000000000',
  };
  const config = { url: '', secret: 's'.repeat(32), timeoutMs: 2_000, preCreate: true };

  test('is a 502 naming the problem, and a warning in the log; never a 500', async () => {
    receiver.answer = () => json({ object: { key: '../../etc/passwd' } });
    const warn = vi.fn();
    const log = { warn } as unknown as FastifyBaseLogger;
    const check = preCreateCheck({ ...config, url: receiver.url }, log, { ...RULES, objectExists: async () => false });
    const error = await check(upload).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(FreightError);
    expect(toHttpAnswer(error)).toMatchObject({
      status: 502,
      code: 'ERR_WEBHOOK_BAD_ANSWER',
      message: expect.stringMatching(
        /^the pre-create check answered with object\.key "\.\.\/\.\.\/etc\/passwd" has an empty, "\." or "\.\." segment$/,
      ),
    });
    expect(warn).toHaveBeenCalledWith(
      { userId: 'ann', problem: expect.stringMatching(/object\.key/) },
      'pre-create webhook: an answer Freight refuses',
    );
  });

  test('on the local file store, a shape is checked, then ignored with a warning', async () => {
    receiver.answer = () => json({ object: { key: 'a/b.bin', contentType: 'image/png' } });
    const warn = vi.fn();
    const check = preCreateCheck({ ...config, url: receiver.url }, { warn } as unknown as FastifyBaseLogger, undefined);
    expect(await check(upload)).toBeUndefined();
    expect(warn).toHaveBeenCalledWith({ userId: 'ann' }, expect.stringMatching(/file store keeps no object shape/));
    receiver.answer = () => json({ object: { key: '/abs' } });
    await expect(check(upload)).rejects.toMatchObject({ code: 'ERR_WEBHOOK_BAD_ANSWER' });
  });
});
