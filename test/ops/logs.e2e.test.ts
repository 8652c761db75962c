/**
 * The log, captured at its most verbose (trace) while uploads, signing, downloads and failures happen: JSON lines,
 * each request's with its id and the upload's, and not one token, signature, credential or secret among them.
 */
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { uploadDirect } from '../../src/client/direct-upload.js';
import { bufferSource } from '../../src/client/sources.js';
import {
  JWT_SECRET,
  MiB,
  freightOnS3,
  randomData,
  serviceEnv,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../helpers/harness.js';
import { startTusUpload, uploadIdOf } from '../helpers/tus-client.js';

type Line = Record<string, unknown> & { msg?: string; reqId?: string; uploadId?: string; level: number };

/** A log stream to build an app with, and what it received. */
function capture() {
  const text: string[] = [];
  return {
    stream: { write: (line: string) => void text.push(line) },
    text: () => text.join(''),
    lines: (): Line[] =>
      text
        .join('')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Line),
  };
}

/** Everything secret the requests below carry or produce, to look for in the log. */
const secrets = new Set<string>();

function expectNoSecrets(text: string) {
  expect(text).not.toMatch(/X-Amz-Signature=(?!\[redacted\])/i);
  expect(text).not.toMatch(/X-Amz-Credential=(?!\[redacted\])/i);
  expect(text).not.toMatch(/Signature=[0-9a-f]{64}/);
  expect(text).not.toMatch(/Bearer (?!\[redacted\])/i);
  for (const secret of secrets)
    expect(text.includes(secret), `a secret in the log: ${secret.slice(0, 12)}…`).toBe(false);
}

describe('logs on a working server', () => {
  const log = capture();
  const ctx = freightOnS3('freight-logs', { LOG_LEVEL: 'trace' }, { logStream: log.stream });

  beforeAll(() => {
    secrets.add(JWT_SECRET);
    secrets.add(inject('s3').secretAccessKey);
  });

  test('a tus upload, a direct upload with signed parts, a download redirect and a refused token: ids on every line, no secret in any', async () => {
    const user = uniqueUser('logs');
    const token = await tokenFor(user);
    secrets.add(token);

    // tus, with the client's own request id
    const run = startTusUpload(randomData(7 * MiB), {
      endpoint: `${ctx.freight.url}/files/`,
      headers: { Authorization: `Bearer ${token}`, 'X-Request-Id': 'client-req-42' },
      chunkSize: 3 * MiB,
      metadata: { filename: 'logged.bin' },
    });
    const tusId = uploadIdOf(await run.done);

    // direct, its part URLs signed (and their signatures kept to look for)
    const signing: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (String(input).includes('/api/multipart')) {
        const text = await res.clone().text();
        for (const [, signature] of text.matchAll(/X-Amz-Signature=([0-9a-f]{64})/g)) secrets.add(signature!);
        for (const [, credential] of text.matchAll(/X-Amz-Credential=([^&"]+)/g))
          secrets.add(decodeURIComponent(credential!));
      }
      return res;
    };
    const direct = await uploadDirect({
      endpoint: ctx.freight.url,
      token,
      source: bufferSource(randomData(6 * MiB)),
      filename: 'direct-logged.bin',
      partSize: 5 * MiB,
      fetch: signing,
    });

    // a download: the answer is a presigned URL
    const redirect = await fetch(`${ctx.freight.url}/files/${tusId}`, {
      headers: { Authorization: `Bearer ${token}` },
      redirect: 'manual',
    });
    expect(redirect.status).toBe(302);
    const location = new URL(redirect.headers.get('location')!);
    secrets.add(location.searchParams.get('X-Amz-Signature')!);

    // a token signed with another secret, and a request id that is not a sane token
    const forged = await tokenFor(user, { secret: 'another-secret-0123456789abcdef-xyz' });
    secrets.add(forged);
    const refused = await fetch(`${ctx.freight.url}/api/uploads`, {
      headers: { Authorization: `Bearer ${forged}`, 'X-Request-Id': 'bad id\twith "quotes"' },
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    // The signed URL sent back to Freight (a confused client) is logged without its signature.
    await fetch(`${ctx.freight.url}/files/${tusId}?${location.searchParams}`, {
      headers: { Authorization: `Bearer ${token}` },
      redirect: 'manual',
    });

    const lines = log.lines();
    expectNoSecrets(log.text());

    // Every line of a request carries its id; the client's id is kept when sane.
    const requestLines = lines.filter((line) => line.msg === 'incoming request' || line.msg === 'request completed');
    expect(requestLines.length).toBeGreaterThan(10);
    for (const line of requestLines) expect(line.reqId).toBeTruthy();
    const tusLines = lines.filter((line) => line.reqId === 'client-req-42');
    expect(tusLines.length).toBeGreaterThanOrEqual(6);

    // Every line of a request about an upload names it: its creation (once made), its PATCHes, its parts.
    const completed = (line: Line) => line.msg === 'request completed';
    const tusCompletions = tusLines.filter(completed);
    expect(tusCompletions.map((line) => line.uploadId)).toEqual(tusCompletions.map(() => tusId));
    for (const line of lines.filter((line) => typeof (line.req as { url?: string } | undefined)?.url === 'string')) {
      const url = (line.req as { url: string }).url;
      for (const id of [tusId, direct.id]) if (url.includes(id)) expect(line.uploadId, url).toBe(id);
    }
    const directCompletions = lines.filter((line) => completed(line) && line.uploadId === direct.id);
    // create, sign × 1 (the first batch comes with the create), parts, complete
    expect(directCompletions.length).toBeGreaterThanOrEqual(3);
    // A request with a body has a first and a last line; a bodiless one (the download) one line, with its request.
    const linesOf = (reqId: unknown) => lines.filter((line) => line.reqId === reqId).map((line) => line.msg);
    const firstLines = lines.filter((line) => line.msg === 'incoming request');
    const methodsAt = (level: number) =>
      [
        ...new Set(
          firstLines.filter((line) => line.level === level).map((line) => (line.req as { method?: string }).method),
        ),
      ].sort();
    expect(methodsAt(30)).toEqual(['PATCH', 'POST']);
    expect(methodsAt(20)).toEqual(['GET']);
    const downloadLine = lines.find(
      (line) => completed(line) && (line.res as { statusCode?: number }).statusCode === 302,
    );
    expect(downloadLine?.req).toMatchObject({ method: 'GET', url: `/files/${tusId}` });
    expect(linesOf(downloadLine?.reqId)).toEqual(['incoming request', 'request completed']);
    expect(lines.filter((line) => line.reqId === downloadLine?.reqId).map((line) => line.level)).toEqual([20, 30]);
    const refusedLine = lines.find(
      (line) => completed(line) && (line.res as { statusCode?: number }).statusCode === 401,
    );
    expect(refusedLine?.reqId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('logs of S3 refusing every request (a wrong secret key)', () => {
  const log = capture();
  let freight: RunningFreight;
  const ctx = freightOnS3('freight-logs-refused');
  const wrongSecret = 'wrong-secret-key-0123456789-abcdef';

  beforeAll(async () => {
    secrets.add(wrongSecret);
    freight = await startFreight(
      serviceEnv(ctx.bucket.bucket, { S3_SECRET_ACCESS_KEY: wrongSecret, LOG_LEVEL: 'trace' }),
      {
        logStream: log.stream,
      },
    );
  });
  afterAll(() => freight?.close());

  test("the SDK's error (which holds the signed request) is logged without its Authorization, signature or key", async () => {
    const token = await tokenFor(uniqueUser('logs'));
    secrets.add(token);
    const auth = { Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0' };
    const created = await fetch(`${freight.url}/files/`, {
      method: 'POST',
      headers: { ...auth, 'Upload-Length': String(6 * MiB) },
    });
    const patched = await fetch(created.headers.get('location')!, {
      method: 'PATCH',
      headers: { ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: randomData(6 * MiB),
    });
    expect(patched.status).toBe(500);
    const failure = log.lines().find((line) => line.msg === 'tus request failed');
    expect(failure?.uploadId).toBe(uploadIdOf(created.headers.get('location')!));
    expect((failure?.err as { s3?: { httpStatusCode?: number } } | undefined)?.s3?.httpStatusCode).toBe(403);
    expectNoSecrets(log.text());
  });
});
