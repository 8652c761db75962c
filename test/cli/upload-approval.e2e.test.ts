/**
 * `freight upload` against a server with a pre-finish check (WEBHOOK_PRE_FINISH): what the command says when the
 * receiver has not decided (the file is stored and awaits approval: said per file, in --json, exit 0) and when it
 * refuses (the file failed with the receiver's reason, exit 1), over tus and --direct. Real process, real
 * PostgreSQL (a database of this file's own), real S3, a local receiver.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  MiB,
  isolatedServices,
  randomData,
  serviceEnv,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../helpers/harness.js';
import { answerPreFinish, receiverForFile } from '../webhooks/receiver.js';
import { runCli } from './cli-process.js';

const ctx = isolatedServices('freight-cli-approval');
const receiver = receiverForFile();
let freight: RunningFreight;
let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'freight-cli-approval-'));
  freight = await startFreight(
    serviceEnv(ctx.bucket.bucket, {
      DATABASE_URL: ctx.database.url,
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: 'webhook-test-secret-0123456789abcdef',
      // The receiver answers at once; a generous bound keeps a loaded machine from turning a 204 into "no answer".
      WEBHOOK_TIMEOUT: '30s',
      WEBHOOK_PRE_FINISH: 'true',
      WEBHOOK_PROGRESS_INTERVAL: '0',
      JANITOR_INTERVAL: '0',
    }),
  );
});
afterAll(async () => {
  await freight?.close();
  await rm(workDir, { recursive: true, force: true });
});

interface JsonResult {
  ok: boolean;
  files: Array<{ status: string; id?: string; error?: string }>;
}

async function upload(name: string, protocol: 'tus' | 'direct') {
  const user = uniqueUser(`cli-${protocol}`);
  const file = path.join(workDir, name);
  await writeFile(file, randomData(6 * MiB));
  const run = runCli(
    [
      'upload',
      file,
      '--endpoint',
      freight.url,
      '--token',
      await tokenFor(user),
      '--json',
      ...(protocol === 'direct' ? ['--direct'] : []),
    ],
    { XDG_STATE_HOME: path.join(workDir, 'state') },
  );
  const code = await run.exited;
  const rows = await ctx.sql<{ status: string }[]>`select status from file_uploads where user_id = ${user}`;
  return { code, stderr: run.stderr(), json: JSON.parse(run.stdout()) as JsonResult, rows };
}

describe.each(['tus', 'direct'] as const)('freight upload over %s, the pre-finish check', (protocol) => {
  test('has not decided (503): the file is stored and awaits approval, said per file and in --json; exit 0', async () => {
    answerPreFinish(receiver, undefined, () => ({ status: 503 }));
    const { code, stderr, json, rows } = await upload(`waiting-${protocol}.bin`, protocol);
    expect(code, stderr).toBe(0);
    expect(json).toMatchObject({ ok: true, files: [{ status: 'awaiting_approval' }] });
    expect(stderr).toMatch(/^waiting-\w+\.bin {2}100% {2}6 MiB \/ 6 MiB {2}awaiting approval$/m);
    expect(stderr).toContain("1 of 1 stored and awaiting the server's approval");
    expect(rows.map((row) => row.status)).toEqual(['awaiting_approval']);
  });

  test('approves: completed, as without a check; exit 0', async () => {
    answerPreFinish(receiver, undefined, () => ({ status: 204 }));
    const { code, stderr, json, rows } = await upload(`approved-${protocol}.bin`, protocol);
    expect(code, stderr).toBe(0);
    expect(json).toMatchObject({ ok: true, files: [{ status: 'completed' }] });
    expect(stderr).not.toContain('awaiting');
    expect(rows.map((row) => row.status)).toEqual(['completed']);
  });

  test("refuses (403): the file failed with the receiver's reason; exit 1", async () => {
    answerPreFinish(receiver, undefined, () => ({ status: 403, body: 'not this one' }));
    const { code, stderr, json, rows } = await upload(`refused-${protocol}.bin`, protocol);
    expect(code, stderr).toBe(1);
    expect(json.ok).toBe(false);
    expect(json.files[0]).toMatchObject({ status: 'failed' });
    expect(json.files[0]!.error).toContain('not this one');
    expect(rows.map((row) => row.status)).toEqual(['rejected']);
  });
});
