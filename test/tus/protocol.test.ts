import { ERRORS } from '@tus/utils';
import { describe, expect, test } from 'vitest';
import { type FreightError, toHttpAnswer } from '../../src/errors.js';
import { parseUploadMetadata } from '../../src/tus/metadata.js';
import { checkTusRequest, parseUploadConcat } from '../../src/tus/protocol.js';
import { fromTusUtils } from '../../src/tus/reply.js';

const status = (fn: () => void): number | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    return (error as FreightError).status;
  }
};

describe('tus request checks', () => {
  const TUS = { 'tus-resumable': '1.0.0' };

  test('OPTIONS and GET need no Tus-Resumable', () => {
    expect(status(() => checkTusRequest('OPTIONS', {}, 100))).toBeUndefined();
    expect(status(() => checkTusRequest('GET', {}, 100))).toBeUndefined();
  });

  test('HEAD, POST, PATCH and DELETE need Tus-Resumable: 1.0.0 (412 with Tus-Version otherwise)', () => {
    for (const method of ['HEAD', 'POST', 'PATCH', 'DELETE']) {
      let error: unknown;
      try {
        checkTusRequest(method, { 'tus-resumable': '2.0.0' }, 100);
      } catch (caught) {
        error = caught;
      }
      expect((error as FreightError).status).toBe(412);
      expect((error as FreightError).headers['Tus-Version']).toBe('1.0.0');
    }
  });

  test('PATCH: media type 415, Upload-Offset 400', () => {
    const ok = { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' };
    expect(status(() => checkTusRequest('PATCH', ok, 100))).toBeUndefined();
    expect(status(() => checkTusRequest('PATCH', { ...ok, 'content-type': 'text/plain' }, 100))).toBe(415);
    expect(status(() => checkTusRequest('PATCH', { ...ok, 'content-type': undefined }, 100))).toBe(415);
    expect(status(() => checkTusRequest('PATCH', { ...ok, 'upload-offset': undefined }, 100))).toBe(400);
    expect(status(() => checkTusRequest('PATCH', { ...ok, 'upload-offset': '1e3' }, 100))).toBe(400);
    expect(status(() => checkTusRequest('PATCH', { ...ok, 'upload-length': '101' }, 100))).toBe(413);
  });

  test('POST: exactly one of Upload-Length and Upload-Defer-Length: 1, within the maximum', () => {
    expect(status(() => checkTusRequest('POST', { ...TUS, 'upload-length': '100' }, 100))).toBeUndefined();
    expect(status(() => checkTusRequest('POST', { ...TUS, 'upload-defer-length': '1' }, 100))).toBeUndefined();
    expect(status(() => checkTusRequest('POST', { ...TUS, 'upload-length': '101' }, 100))).toBe(413);
    expect(status(() => checkTusRequest('POST', { ...TUS, 'upload-length': '0x10' }, 100))).toBe(400);
    expect(status(() => checkTusRequest('POST', { ...TUS }, 100))).toBe(400);
  });
});

describe('tus request checks, each spec sentence', () => {
  const TUS = { 'tus-resumable': '1.0.0' };
  const PATCH = { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' };
  const message = (fn: () => void): string | undefined => {
    try {
      fn();
      return undefined;
    } catch (error) {
      return (error as FreightError).message;
    }
  };

  test('"The Tus-Resumable header MUST be included in every request": missing is 412 too, saying so', () => {
    for (const method of ['HEAD', 'POST', 'PATCH', 'DELETE']) {
      expect(status(() => checkTusRequest(method, {}, 100))).toBe(412);
      expect(message(() => checkTusRequest(method, {}, 100))).toBe('Tus-Resumable header required');
    }
    expect(status(() => checkTusRequest('HEAD', TUS, 100))).toBeUndefined();
    expect(status(() => checkTusRequest('DELETE', TUS, 100))).toBeUndefined();
  });

  test('PATCH Content-Type: the media type counts, not its case or parameters', () => {
    expect(
      status(() => checkTusRequest('PATCH', { ...PATCH, 'content-type': 'Application/Offset+Octet-Stream' }, 100)),
    ).toBeUndefined();
    expect(
      status(() => checkTusRequest('PATCH', { ...PATCH, 'content-type': 'application/offset+octet-stream; x=1' }, 100)),
    ).toBeUndefined();
    expect(status(() => checkTusRequest('PATCH', { ...PATCH, 'content-type': 'application/octet-stream' }, 100))).toBe(
      415,
    );
  });

  test('Upload-Offset "MUST be a non-negative integer": no sign, no fraction, nothing past 2^53', () => {
    for (const offset of ['-1', '+1', '1.5', ' 1', '', '9007199254740993']) {
      expect(
        status(() => checkTusRequest('PATCH', { ...PATCH, 'upload-offset': offset }, 100)),
        offset,
      ).toBe(400);
    }
    expect(
      status(() => checkTusRequest('PATCH', { ...PATCH, 'upload-offset': '9007199254740991' }, 100)),
    ).toBeUndefined();
  });

  test('creation-defer-length: the PATCH that declares the length is held to the maximum like a POST', () => {
    expect(status(() => checkTusRequest('PATCH', { ...PATCH, 'upload-length': '100' }, 100))).toBeUndefined();
    expect(status(() => checkTusRequest('PATCH', { ...PATCH, 'upload-length': '-5' }, 100))).toBe(400);
  });

  test('POST: not both Upload-Length and Upload-Defer-Length; Upload-Defer-Length "MUST be 1"', () => {
    expect(
      status(() => checkTusRequest('POST', { ...TUS, 'upload-length': '5', 'upload-defer-length': '1' }, 100)),
    ).toBe(400);
    expect(status(() => checkTusRequest('POST', { ...TUS, 'upload-defer-length': '0' }, 100))).toBe(400);
    expect(status(() => checkTusRequest('POST', { ...TUS, 'upload-defer-length': 'true' }, 100))).toBe(400);
    expect(status(() => checkTusRequest('POST', { ...TUS, 'upload-length': '0' }, 100))).toBeUndefined();
    expect(status(() => checkTusRequest('POST', { ...TUS, 'upload-length': '100' }, 100))).toBeUndefined();
  });

  test('POST Upload-Metadata is checked at creation, and its sha256 must be a SHA-256 in hex', () => {
    const withMetadata = (value: string) => ({ ...TUS, 'upload-length': '5', 'upload-metadata': value });
    const hex = Buffer.from('a'.repeat(64)).toString('base64');
    expect(status(() => checkTusRequest('POST', withMetadata(`sha256 ${hex}`), 100))).toBeUndefined();
    expect(
      status(() => checkTusRequest('POST', withMetadata(`sha256 ${Buffer.from('abc').toString('base64')}`), 100)),
    ).toBe(400);
    expect(
      status(() =>
        checkTusRequest('POST', withMetadata(`sha256 ${Buffer.from('g'.repeat(64)).toString('base64')}`), 100),
      ),
    ).toBe(400);
    expect(status(() => checkTusRequest('POST', withMetadata('a Y Q'), 100))).toBe(400);
  });

  test('concatenation: "partial", or "final;" and the partial URLs; a final takes no length of its own', () => {
    expect(parseUploadConcat(undefined)).toBeUndefined();
    expect(parseUploadConcat('partial')).toEqual({ kind: 'partial' });
    expect(parseUploadConcat('final;/files/a /files/b')).toEqual({ kind: 'final', urls: ['/files/a', '/files/b'] });
    expect(parseUploadConcat('final; /files/a  /files/b ')).toEqual({ kind: 'final', urls: ['/files/a', '/files/b'] });
    for (const value of ['final;', 'final; ', 'final', 'partial;x', 'whole']) {
      expect(
        status(() => parseUploadConcat(value)),
        value,
      ).toBe(400);
    }
    const final = { ...TUS, 'upload-concat': 'final;/files/a /files/b' };
    expect(status(() => checkTusRequest('POST', final, 100))).toBeUndefined();
    expect(status(() => checkTusRequest('POST', { ...final, 'upload-length': '10' }, 100))).toBe(400);
    expect(status(() => checkTusRequest('POST', { ...final, 'upload-defer-length': '1' }, 100))).toBe(400);
    // A partial upload is created like any other: with its length.
    expect(status(() => checkTusRequest('POST', { ...TUS, 'upload-concat': 'partial' }, 100))).toBe(400);
    expect(
      status(() => checkTusRequest('POST', { ...TUS, 'upload-concat': 'partial', 'upload-length': '5' }, 100)),
    ).toBeUndefined();
  });
});

describe('Upload-Metadata', () => {
  test('keys with Base64 values, or none', () => {
    expect(parseUploadMetadata('filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential')).toEqual({
      filename: 'world_domination_plan.pdf',
      is_confidential: '',
    });
  });

  test.each([
    ['', /empty key/],
    ['a YQ==,', /empty key/],
    ['a Y Q', /more than a key and a value/],
    ['a YQ', /not a multiple of 4/],
    ['a Y*==', /not Base64/],
    ['a YQ==,a Yg==', /appears twice/],
  ])('%j is refused', (value, message) => {
    expect(() => parseUploadMetadata(value)).toThrow(message);
  });
});

describe('errors to HTTP', () => {
  test("the DataStore and Locker contracts' errors (@tus/utils) are named: a lock timeout is 423, never a 500", () => {
    const tus = (error: unknown) => toHttpAnswer(fromTusUtils(error));
    expect(tus(ERRORS.ERR_LOCK_TIMEOUT)).toMatchObject({
      status: 423,
      code: 'ERR_UPLOAD_LOCKED',
      headers: { 'Retry-After': '5' },
    });
    expect(tus(ERRORS.FILE_NOT_FOUND)).toMatchObject({ status: 404, code: 'ERR_UPLOAD_NOT_FOUND' });
    expect(tus(ERRORS.FILE_NO_LONGER_EXISTS)).toMatchObject({ status: 410, code: 'ERR_UPLOAD_GONE' });
    expect(tus(ERRORS.ERR_SIZE_EXCEEDED)).toMatchObject({ status: 413, code: 'ERR_UPLOAD_TOO_LARGE' });
  });

  test("the S3 client's timeout is a 503 with Retry-After even without the SDK's $metadata (a streamed part body)", () => {
    // What @smithy/node-http-handler throws after S3_REQUEST_TIMEOUT of silence; the retry middleware adds no
    // $metadata to it for a request whose body is a stream.
    const timeout = Object.assign(new Error('the request socket timed out after 2000 ms of inactivity'), {
      name: 'TimeoutError',
    });
    expect(toHttpAnswer(timeout)).toEqual({
      status: 503,
      code: 'ERR_STORAGE_UNAVAILABLE',
      message: 'storage did not answer in time; retry later',
      headers: { 'Retry-After': '5' },
    });
  });

  test('unknown errors are a 500 that reveals nothing', () => {
    expect(toHttpAnswer(new Error('password=hunter2'))).toEqual({
      status: 500,
      code: 'ERR_INTERNAL',
      message: 'internal server error',
      headers: {},
    });
  });
});
