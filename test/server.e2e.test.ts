/** The server as a process, the way `npm start` runs it: dist/src/server.js (built by the global setup). */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { randomData, sha256 } from './helpers/harness.js';
import { startTusUpload, uploadIdOf } from './helpers/tus-client.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SERVER = path.join(ROOT, 'dist', 'src', 'server.js');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** A clean environment: nothing of the test run's own configuration leaks in. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...extra };
}

describe('configuration errors stop the server with one line naming the variable', () => {
  test.each([
    [{ PORT: 'http' }, /^freight: invalid configuration: PORT must be an integer/],
    [{ S3_PART_SIZE: '1KiB' }, /^freight: invalid configuration: S3_PART_SIZE must be from/],
    [{ DATABASE_URL: 'postgres://127.0.0.1:1/x' }, /^freight: invalid configuration: AUTH_JWT_SECRET is required/],
    [{ AUTH_JWT_SECRET: 'short' }, /^freight: invalid configuration: AUTH_JWT_SECRET must be at least 32 characters/],
  ])('%o', (env, message) => {
    const result = spawnSync(process.execPath, [SERVER], {
      env: cleanEnv({ DATA_DIR: os.tmpdir(), ...env }),
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });
});

describe('npm start on a bare machine (embedded defaults)', () => {
  let dataDir: string;
  let child: ReturnType<typeof spawn>;
  let url: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'freight-bare-'));
    child = spawn(process.execPath, [SERVER], {
      env: cleanEnv({ DATA_DIR: dataDir, PORT: '0' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    url = await new Promise<string>((resolve, reject) => {
      let log = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
        if (match?.[1]) resolve(match[1]);
      });
      child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${log}`)));
    });
  });

  afterAll(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  test('serves tus with a development secret that `npm run token` signs with (freight token)', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(existsSync(path.join(dataDir, 'db'))).toBe(true);
    expect(existsSync(path.join(dataDir, 'tmp'))).toBe(true);

    const token = spawnSync(process.execPath, [CLI, 'token', 'alice'], {
      env: cleanEnv({ DATA_DIR: dataDir }),
      encoding: 'utf8',
    });
    expect(token.status).toBe(0);
    const data = randomData(300_000);
    const run = startTusUpload(data, {
      endpoint: `${url}/files/`,
      headers: { Authorization: `Bearer ${token.stdout.trim()}` },
      metadata: { filename: 'hello.bin' },
    });
    const uploadUrl = await run.done;
    const download = await fetch(uploadUrl, { headers: { Authorization: `Bearer ${token.stdout.trim()}` } });
    expect(sha256(new Uint8Array(await download.arrayBuffer()))).toBe(sha256(data));
    expect(existsSync(path.join(dataDir, 'files', uploadIdOf(uploadUrl)))).toBe(true);

    const anonymous = await fetch(`${url}/api/uploads`);
    expect(anonymous.status).toBe(401);
  });

  test('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
