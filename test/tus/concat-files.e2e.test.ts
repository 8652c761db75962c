/**
 * tus concatenation on the embedded defaults (PGlite and the file store, no S3, `npm start` with no settings):
 * tus-js-client's parallelUploads finishes, the joined file is byte-identical, and nothing is logged as
 * "[object Object]". (Before: the final's file was never created, every assembly failed as "[object Object]" and
 * was retried for ever.)
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  JWT_SECRET,
  MiB,
  eventually,
  randomData,
  sha256,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../helpers/harness.js';
import { startTusUpload, uploadIdOf } from '../helpers/tus-client.js';

let freight: RunningFreight;
const logLines: string[] = [];

beforeAll(async () => {
  freight = await startFreight(
    { AUTH_JWT_SECRET: JWT_SECRET, LOG_LEVEL: 'info' },
    { logStream: { write: (line: string) => void logLines.push(line) } },
  );
});
afterAll(async () => {
  await freight?.close();
});

const auth = async (user: string) => ({ Authorization: `Bearer ${await tokenFor(user)}` });

test('tus-js-client with parallelUploads: 3 on the file store: the final upload completes, byte-identical', async () => {
  const headers = await auth(uniqueUser('files'));
  const data = randomData(9 * MiB + 4_321);
  const run = startTusUpload(data, {
    endpoint: `${freight.url}/files/`,
    headers,
    parallelUploads: 3,
    metadata: { filename: 'parallel.bin' },
  });
  const id = uploadIdOf(await run.done);
  expect(run.requests.filter((request) => request.method === 'POST')).toHaveLength(4);

  let last: Record<string, unknown> = {};
  const api = await eventually(async () => {
    last = (await (await fetch(`${freight.url}/api/uploads/${id}`, { headers })).json()) as Record<string, unknown>;
    return last.status === 'completed' ? last : undefined;
  }, 30_000).catch(() => {
    throw new Error(`the final upload is ${last.status} (${last.error}), not completed`);
  });
  expect(api).toMatchObject({ concat: 'final', totalSize: data.length, sha256: sha256(data), error: null });
  expect(api.partials).toHaveLength(3);

  const download = await fetch(`${freight.url}/files/${id}`, { headers });
  expect(download.status).toBe(200);
  const bytes = Buffer.from(await download.arrayBuffer());
  expect(bytes.length).toBe(data.length);
  expect(sha256(bytes)).toBe(sha256(data));

  const head = await fetch(`${freight.url}/files/${id}`, {
    method: 'HEAD',
    headers: { ...headers, 'Tus-Resumable': '1.0.0' },
  });
  expect(head.headers.get('upload-offset')).toBe(String(data.length));
  expect(logLines.filter((line) => line.includes('[object Object]'))).toEqual([]);
});
