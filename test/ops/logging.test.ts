/** What the log keeps of texts, errors and the SDK's own lines: never a signature, credential or token. */
import type { IncomingMessage } from 'node:http';
import { describe, expect, test } from 'vitest';
import { requestIdOf } from '../../src/ops/logging.js';
import { scrub, serializeError } from '../../src/ops/redact.js';
import { sdkLogger } from '../../src/storage/s3.js';

const SIGNED =
  'http://127.0.0.1:7480/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261203%2Fus-east-1%2Fs3%2Faws4_request' +
  '&X-Amz-Date=20261203T000000Z&X-Amz-Expires=900&X-Amz-Signature=' +
  'a'.repeat(64) +
  '&X-Amz-SignedHeaders=host&partNumber=1&uploadId=2~abc';
const AUTHORIZATION = `AWS4-HMAC-SHA256 Credential=AKID/20261203/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'b'.repeat(64)}`;
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

describe('scrub', () => {
  test('blanks the signature and credential of a presigned URL, and keeps the rest', () => {
    const clean = scrub(`PUT ${SIGNED} failed`);
    expect(clean).not.toContain('a'.repeat(64));
    expect(clean).not.toContain('AKID');
    expect(clean).toContain('X-Amz-Signature=[redacted]');
    expect(clean).toContain('partNumber=1&uploadId=2~abc');
  });

  test('blanks a SigV4 Authorization header, bearer tokens and bare JWTs', () => {
    expect(scrub(AUTHORIZATION)).not.toMatch(/AKID|b{64}/);
    expect(scrub(`Authorization: Bearer ${JWT}`)).toBe('Authorization: Bearer [redacted]');
    expect(scrub(`token ${JWT} refused`)).toBe('token [redacted] refused');
  });
});

describe('serializeError', () => {
  test("an AWS SDK error keeps its name, message, code and S3's status, never the request it carries", () => {
    const error = Object.assign(new Error(`The request signature we calculated does not match (${SIGNED})`), {
      name: 'SignatureDoesNotMatch',
      $metadata: { httpStatusCode: 403, requestId: 'tx0001' },
      $response: { headers: { authorization: AUTHORIZATION } },
      Code: 'SignatureDoesNotMatch',
    });
    const serialized = serializeError(error);
    const text = JSON.stringify(serialized);
    expect(serialized).toMatchObject({
      type: 'SignatureDoesNotMatch',
      s3: { httpStatusCode: 403, requestId: 'tx0001' },
    });
    expect(text).not.toMatch(/AKID|a{64}|b{64}|authorization/i);
  });

  test('its cause too', () => {
    const error = new Error('outer', { cause: new Error(`inner ${SIGNED}`) });
    expect(JSON.stringify(serializeError(error))).not.toContain('a'.repeat(64));
  });
});

test("the SDK's own warnings reach the log scrubbed", () => {
  const logged: unknown[] = [];
  const logger = sdkLogger({ debug: (obj) => logged.push(obj) });
  logger.warn(
    `retrying ${SIGNED}`,
    { request: { headers: { authorization: AUTHORIZATION } } },
    new Error(`x ${SIGNED}`),
  );
  const text = JSON.stringify(logged);
  expect(logged).toHaveLength(1);
  expect(text).not.toMatch(/AKID|a{64}|b{64}/);
});

test("X-Request-Id: the client's when it is a sane token, else a new UUID", () => {
  const request = (id?: string) => ({ headers: id === undefined ? {} : { 'x-request-id': id } }) as IncomingMessage;
  expect(requestIdOf(request('edge-7f3a:01.2_x'))).toBe('edge-7f3a:01.2_x');
  for (const bad of [undefined, '', 'has space', 'quote"', 'line\nbreak', 'x'.repeat(129)]) {
    expect(requestIdOf(request(bad))).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  }
});
