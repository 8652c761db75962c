/** The Freight-Signature header: what a receiver checks, as docs/operations.md shows it. */
import { createHmac } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { signatureHeader, verifySignature } from '../../src/webhooks/signature.js';
import { rejectionMessage } from '../../src/webhooks/pre-create.js';

const SECRET = 's'.repeat(32);
const BODY = '{"event":"upload.completed","id":7}';

describe('Freight-Signature', () => {
  test('is t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">', () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    const t = Math.floor(at.getTime() / 1000);
    const expected = createHmac('sha256', SECRET).update(`${t}.${BODY}`).digest('hex');
    expect(signatureHeader(SECRET, BODY, at)).toBe(`t=${t},v1=${expected}`);
  });

  test('verifies the body it signs, and nothing else', () => {
    const header = signatureHeader(SECRET, BODY);
    expect(verifySignature(SECRET, BODY, header)).toBe(true);
    expect(verifySignature(SECRET, `${BODY} `, header)).toBe(false);
    expect(verifySignature('t'.repeat(32), BODY, header)).toBe(false);
    expect(
      verifySignature(
        SECRET,
        BODY,
        header.replace(/t=\d+/, (t) => `${t}1`),
      ),
    ).toBe(false);
    expect(verifySignature(SECRET, BODY, 'v1=deadbeef')).toBe(false);
    expect(verifySignature(SECRET, BODY, '')).toBe(false);
  });

  test('refuses a signature too old or from the future (a replay)', () => {
    const header = signatureHeader(SECRET, BODY, new Date(Date.now() - 10 * 60_000));
    expect(verifySignature(SECRET, BODY, header)).toBe(false);
    expect(verifySignature(SECRET, BODY, header, 3600)).toBe(true);
    expect(verifySignature(SECRET, BODY, signatureHeader(SECRET, BODY, new Date(Date.now() + 10 * 60_000)))).toBe(
      false,
    );
  });
});

describe("a pre-create receiver's reason", () => {
  const answer = (body: string, contentType?: string) => ({ status: 403, body, contentType });
  test.each([
    [answer('{"message":"over quota"}', 'application/json'), 'over quota'],
    [answer('{"message":"over quota"}', 'application/problem+json; charset=utf-8'), 'over quota'],
    [answer('{"error":"nope"}', 'application/json'), '{"error":"nope"}'],
    [answer('not json', 'application/json'), 'not json'],
    [answer('  plain\r\nreason\t ', 'text/plain'), 'plain reason'],
    [answer(''), 'the upload was refused (the pre-create check answered 403)'],
    [answer('x'.repeat(600)), `${'x'.repeat(500)}…`],
  ])('%o → %s', (given, message) => {
    expect(rejectionMessage(given)).toBe(message);
  });
});
