/**
 * The receiver of docs/webhooks.md (examples/webhook-receiver.mjs), run as it is documented: its own Node process,
 * in front of a Freight on real PostgreSQL and S3 with the pre-finish gate on. It refuses what is not signed with
 * the secret (or signed too long ago), approves an ordinary file, refuses an executable after upload (the tus client
 * gets its message), and prints the upload events once each.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { signatureHeader } from '../../src/webhooks/signature.js';
import {
  eventually,
  randomData,
  serviceEnv,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
  isolatedServices,
} from '../helpers/harness.js';
import { startTusUpload, uploadIdOf } from '../helpers/tus-client.js';

const ctx = isolatedServices('freight-receiver-example');

const SECRET = 'example-receiver-secret-0123456789abcdef';
const script = path.resolve(import.meta.dirname, '..', '..', 'examples', 'webhook-receiver.mjs');

let receiver: ChildProcess;
let output = '';
let url: string;
let freight: RunningFreight;

beforeAll(async () => {
  receiver = spawn(process.execPath, [script], {
    env: { ...process.env, WEBHOOK_SECRET: SECRET, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  receiver.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  url = await eventually(async () => /listening on (\S+)/.exec(output)?.[1]);
  freight = await startFreight(
    serviceEnv(ctx.bucket.bucket, {
      DATABASE_URL: ctx.database.url,
      WEBHOOK_URL: url,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_PRE_FINISH: 'true',
      JANITOR_INTERVAL: '0',
    }),
  );
});
afterAll(async () => {
  await freight?.close();
  receiver?.kill('SIGTERM');
});

const post = (body: string, signature: string | undefined) =>
  fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(signature ? { 'Freight-Signature': signature } : {}) },
    body,
  });

test('it refuses a request not signed with the secret, or signed more than 5 minutes ago', async () => {
  const body = JSON.stringify({ event: 'upload.pre-create', upload: { filename: 'a.txt' } });
  expect((await post(body, undefined)).status).toBe(401);
  expect((await post(body, signatureHeader('another-secret-0123456789abcdefghij', body))).status).toBe(401);
  expect((await post(body, signatureHeader(SECRET, body, new Date(Date.now() - 600_000)))).status).toBe(401);
  expect((await post(`${body} `, signatureHeader(SECRET, body))).status).toBe(401);
  expect((await post(body, signatureHeader(SECRET, body))).status).toBe(204);
});

test('behind Freight: an ordinary file is approved and completed, an executable refused after upload with its message', async () => {
  const user = uniqueUser('example');
  const headers = { Authorization: `Bearer ${await tokenFor(user)}` };
  const ok = uploadIdOf(
    await startTusUpload(randomData(1000), {
      endpoint: `${freight.url}/files/`,
      headers,
      metadata: { filename: 'report.txt' },
    }).done,
  );
  const upload = (await (await fetch(`${freight.url}/api/uploads/${ok}`, { headers })).json()) as { status: string };
  expect(upload.status).toBe('completed');

  const refused = await startTusUpload(randomData(1000), {
    endpoint: `${freight.url}/files/`,
    headers,
    metadata: { filename: 'setup.exe' },
  }).done.catch((error: { originalResponse?: { getStatus(): number; getBody(): string } }) => error.originalResponse);
  expect(typeof refused === 'object' && refused !== null && refused.getStatus()).toBe(422);
  expect(typeof refused === 'object' && refused !== null && refused.getBody()).toBe(
    'ERR_UPLOAD_REJECTED: setup.exe was refused after upload: executable content\n',
  );

  // The approval, and the events of the upload printed at most once each (they may arrive in any order: one older
  // than an event already applied is acknowledged and skipped), its completion among them.
  const printed = () =>
    output
      .split('\n')
      .filter((line) => line.includes(ok))
      .map((line) => line.split(' ')[0]);
  await eventually(async () => (printed().includes('upload.completed') ? true : undefined), 30_000);
  expect(printed().filter((word) => word === 'approved')).toHaveLength(1);
  expect(new Set(printed()).size).toBe(printed().length);
  expect(printed().every((word) => ['approved', 'upload.created', 'upload.completed'].includes(word!))).toBe(true);
});
