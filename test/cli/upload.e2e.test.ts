/**
 * `freight upload` as a person runs it: a real process against a real Freight (real PostgreSQL, real S3),
 * interrupted with Ctrl-C and with kill -9, then run again with the same command until it finishes.
 * A TCP relay in front of the server (tus) or of S3 (direct) is held at the moment of each kill, so that the
 * upload cannot finish in between, whatever the machine's speed.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { freePort } from '../../scripts/services.js';
import {
  eventually,
  freightOnS3,
  listAllParts,
  MiB,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../helpers/harness.js';
import { holdingProxy, type HoldingProxy } from '../helpers/proxy.js';
import { runCli, type CliRun } from './cli-process.js';

const ctx = freightOnS3('freight-cli');
let workDir: string;
let stateHome: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'freight-cli-'));
  stateHome = path.join(workDir, 'state');
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

async function localFile(name: string, size: number): Promise<{ file: string; data: Buffer }> {
  const data = randomData(size);
  const file = path.join(workDir, name);
  await writeFile(file, data);
  return { file, data };
}

const cli = (args: string[]) => runCli(args, { XDG_STATE_HOME: stateHome });

async function uploadRows(user: string) {
  return ctx.sql`select id, status, bytes_received, storage_key, s3_upload_id, protocol from file_uploads where user_id = ${user}`;
}

/** Resolves once `stored()` reaches `bytes`; fails at once if the command ended first. */
async function whenStored(run: CliRun, stored: () => Promise<number>, bytes: number): Promise<number> {
  let ended = false;
  void run.exited.then(() => (ended = true));
  return eventually(async () => {
    if (ended) throw new Error(`the command ended before ${bytes} bytes were stored:\n${run.stderr()}`);
    const now = await stored();
    return now >= bytes ? now : undefined;
  }, 60_000);
}

/**
 * Holds the relay, stops the command with `signal`, waits until the target is done with every request of the
 * departed command (a part whose whole body reached S3 before the hold is still stored after the command is gone;
 * what the hold kept back is dropped), then lets the relay flow again.
 */
async function interrupt(run: CliRun, proxy: HoldingProxy, signal: NodeJS.Signals): Promise<number | null> {
  await proxy.hold();
  run.child.kill(signal);
  const code = await run.exited;
  await proxy.idle();
  await proxy.up();
  return code;
}

interface JsonResult {
  ok: boolean;
  files: Array<{ status: string; id: string; resumedFrom: number; size: number; protocol: string }>;
}

describe('freight upload over tus', () => {
  test('Ctrl-C, then kill -9, then the same command: each run resumes, the object is byte-identical, one upload', async () => {
    const proxy = await holdingProxy(ctx.freight.url);
    try {
      const user = uniqueUser('cli-tus');
      const { file, data } = await localFile('tus.bin', 48 * MiB + 7);
      const args = [
        'upload',
        file,
        '--endpoint',
        proxy.url,
        '--token',
        await tokenFor(user),
        '--chunk-size',
        '4MiB',
        '--json',
      ];
      const offset = async () => Number((await uploadRows(user))[0]?.bytes_received ?? 0);

      const first = cli(args);
      await whenStored(first, offset, 12 * MiB);
      expect(await interrupt(first, proxy, 'SIGINT')).toBe(130);
      expect(first.stderr()).toMatch(/interrupted.*Run the same command again to resume/);
      const afterCtrlC = await offset();

      const second = cli(args);
      await whenStored(second, offset, afterCtrlC + 12 * MiB);
      expect(await interrupt(second, proxy, 'SIGKILL')).toBeNull();
      const afterKill = await offset();

      const third = cli(args);
      expect(await third.exited, third.stderr()).toBe(0);
      const result = JSON.parse(third.stdout()) as JsonResult;
      expect(result.ok).toBe(true);
      expect(result.files[0]).toMatchObject({ status: 'completed', protocol: 'tus', size: data.length });
      expect(result.files[0]!.resumedFrom).toBeGreaterThanOrEqual(afterKill);
      expect(afterKill).toBeGreaterThan(afterCtrlC);

      const rows = await uploadRows(user);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ id: result.files[0]!.id, status: 'completed', protocol: 'tus' });
      expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, rows[0]!.storage_key)).toBe(sha256(data));
      // Never from byte 0 again: in all, the file once plus at most the chunks cut in flight.
      expect(proxy.relayed.toTarget).toBeLessThan(data.length + 3 * 4 * MiB + MiB);
      expect(await readdir(path.join(stateHome, 'freight', 'uploads'))).toEqual([]);
    } finally {
      await proxy.down();
    }
  });

  test('the server goes away for a moment mid-upload: the command retries by itself, resumes, and exits 0', async () => {
    const proxy = await holdingProxy(ctx.freight.url);
    try {
      const user = uniqueUser('cli-outage');
      const { file, data } = await localFile('outage.bin', 40 * MiB);
      const offset = async () => Number((await uploadRows(user))[0]?.bytes_received ?? 0);
      const run = cli([
        'upload',
        file,
        '--endpoint',
        proxy.url,
        '--token',
        await tokenFor(user),
        '--chunk-size',
        '4MiB',
        '--json',
      ]);
      await whenStored(run, offset, 12 * MiB);
      // The outage lasts until the command has tried again and been turned away, however fast it is.
      await proxy.refuse();
      await proxy.refusedArrival();
      await proxy.up();
      expect(await run.exited, run.stderr()).toBe(0);
      expect(JSON.parse(run.stdout()) as JsonResult).toMatchObject({
        ok: true,
        files: [{ status: 'completed', resumedFrom: 0 }],
      });
      const rows = await uploadRows(user);
      expect(rows).toHaveLength(1);
      expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, rows[0]!.storage_key)).toBe(sha256(data));
      expect(proxy.relayed.toTarget).toBeLessThan(data.length + 3 * 4 * MiB + MiB);
    } finally {
      await proxy.down();
    }
  });

  test('several files, tus to Freight with no options but the endpoint and token: progress per file, exit 0', async () => {
    const user = uniqueUser('cli-many');
    const a = await localFile('a.bin', 3 * MiB);
    const b = await localFile('b b.bin', 1);
    const run = cli(['upload', a.file, b.file, '--endpoint', ctx.freight.url, '--token', await tokenFor(user)]);
    expect(await run.exited, run.stderr()).toBe(0);
    expect(run.stderr()).toMatch(/^a\.bin {2}100% {2}3 MiB \/ 3 MiB {2}completed$/m);
    expect(run.stderr()).toMatch(/^b b\.bin {2}100% {2}1 B \/ 1 B {2}completed$/m);
    const rows = await uploadRows(user);
    expect(rows.map((row) => row.status)).toEqual(['completed', 'completed']);
  });
});

describe('freight upload --direct', () => {
  let s3Proxy: HoldingProxy;
  let freight: RunningFreight;
  beforeAll(async () => {
    // Part URLs are signed for the relay, so the test can hold the bytes going to S3; only the command's go through it.
    s3Proxy = await holdingProxy(inject('s3').endpoint);
    freight = await startFreight(serviceEnv(ctx.bucket.bucket, { S3_PUBLIC_ENDPOINT: s3Proxy.url }));
  });
  afterAll(async () => {
    await freight?.close();
    await s3Proxy?.down();
  });

  test('Ctrl-C, then kill -9, then the same command: stored parts are kept, the object is byte-identical, one upload', async () => {
    const user = uniqueUser('cli-direct');
    const { file, data } = await localFile('direct.bin', 96 * MiB + 5);
    const args = [
      'upload',
      file,
      '--direct',
      '--endpoint',
      freight.url,
      '--token',
      await tokenFor(user),
      '--chunk-size',
      '5MiB',
      '--parallel',
      '2',
      '--json',
    ];
    const storedParts = async () => {
      const [row] = await uploadRows(user);
      if (!row?.s3_upload_id) return 0;
      const parts = await listAllParts(ctx.s3, ctx.bucket.bucket, row.storage_key, row.s3_upload_id);
      return parts.reduce((sum, part) => sum + (part.Size ?? 0), 0);
    };

    const first = cli(args);
    await whenStored(first, storedParts, 15 * MiB);
    expect(await interrupt(first, s3Proxy, 'SIGINT')).toBe(130);
    const afterCtrlC = await storedParts();

    // Listing parts under load can lag the upload by several parts: aim the second cut at what is left.
    const second = cli(args);
    await whenStored(second, storedParts, afterCtrlC + Math.min(10 * MiB, Math.floor((data.length - afterCtrlC) / 2)));
    expect(await interrupt(second, s3Proxy, 'SIGKILL')).toBeNull();
    const afterKill = await storedParts();

    const third = cli(args);
    expect(await third.exited, third.stderr()).toBe(0);
    const result = JSON.parse(third.stdout()) as JsonResult;
    expect(result.files[0]).toMatchObject({ status: 'completed', protocol: 'direct', size: data.length });
    expect(result.files[0]!.resumedFrom).toBe(afterKill);
    expect(afterKill).toBeGreaterThan(afterCtrlC);

    const rows = await uploadRows(user);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'completed', protocol: 'direct' });
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, rows[0]!.storage_key)).toBe(sha256(data));
    expect(s3Proxy.relayed.toTarget).toBeLessThan(data.length + 4 * 5 * MiB + MiB);
  });
});

describe('what a mistake looks like', () => {
  test('a bad token: one line naming the refusal, exit 1, nothing uploaded', async () => {
    const { file } = await localFile('refused.bin', MiB);
    for (const mode of [[], ['--direct']]) {
      const run = cli(['upload', file, ...mode, '--endpoint', ctx.freight.url, '--token', 'not-a-token']);
      expect(await run.exited).toBe(1);
      const lines = run.stderr().trim().split('\n');
      expect(lines, run.stderr()).toHaveLength(1);
      expect(lines[0]).toMatch(/^freight upload: refused: .*401.*ERR_UNAUTHORIZED/);
    }
  });

  test('an endpoint where nothing listens, or no tus server: one line, exit 1', async () => {
    const { file } = await localFile('nowhere.bin', MiB);
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    for (const [endpoint, expected] of [
      [nowhere, /^freight upload: cannot reach http:\/\/127\.0\.0\.1:\d+\/files\/: .*ECONNREFUSED/],
      [
        `${ctx.freight.url}/nothing/here/`,
        /^freight upload: .*\/nothing\/here\/ is not a tus endpoint \(OPTIONS answered 404/,
      ],
    ] as const) {
      const run = cli(['upload', file, '--endpoint', endpoint]);
      expect(await run.exited).toBe(1);
      const lines = run.stderr().trim().split('\n');
      expect(lines, run.stderr()).toHaveLength(1);
      expect(lines[0]).toMatch(expected);
    }
    const direct = cli(['upload', file, '--direct', '--endpoint', nowhere]);
    expect(await direct.exited).toBe(1);
    expect(direct.stderr().trim()).toMatch(
      /^freight upload: cannot reach http:\/\/127\.0\.0\.1:\d+\/healthz: connect ECONNREFUSED/,
    );
  });

  test('usage mistakes: exit 2 with the usage', async () => {
    const run = cli(['upload', '--endpoint', ctx.freight.url]);
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toMatch(/^freight upload: no file given\n\nusage: freight upload/);
    const missing = cli(['upload', path.join(workDir, 'absent.bin'), '--endpoint', ctx.freight.url]);
    expect(await missing.exited).toBe(2);
    expect(missing.stderr().trim()).toMatch(/absent\.bin: no such file$/);
  });
});
