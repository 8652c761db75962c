/** The `freight` command from a fresh build (dist/, built by the global setup), as an operator runs it. */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  JWT_SECRET,
  randomData,
  startFreight,
  testSql,
  tokenFor,
  uniqueUser,
  type RunningFreight,
} from '../helpers/harness.js';
import { testDatabaseUrl } from '../helpers/file-database.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const COMMANDS = ['serve', 'migrate', 'cleanup', 'token', 'uploads'];

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'freight-cli-'));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

/** Only what the command is given: nothing of the test run's own environment leaks in. */
const envOf = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  DATA_DIR: dataDir,
  ...extra,
});

function freight(args: string[], extra?: Record<string, string>) {
  const result = spawnSync(process.execPath, [CLI, ...args], { env: envOf(extra), encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const onPostgres = () => ({ DATABASE_URL: testDatabaseUrl(), AUTH_JWT_SECRET: JWT_SECRET });

describe('help and mistakes', () => {
  test('freight --help lists every command; no command is a usage error', () => {
    const help = freight(['--help']);
    expect(help.status).toBe(0);
    for (const name of COMMANDS) expect(help.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    const bare = freight([]);
    expect(bare.status).toBe(2);
    expect(bare.stderr).toContain('Usage: freight <command>');
    const unknown = freight(['frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr.trim()).toBe('freight: unknown command "frobnicate" (see freight --help)');
  });

  test.each(COMMANDS)('freight %s: --help, -h and "freight help <command>" print its usage', (name) => {
    for (const args of [
      [name, '--help'],
      [name, '-h'],
      ['help', name],
    ]) {
      const result = freight(args);
      expect(result.status, args.join(' ')).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Usage: freight ${name}`));
    }
  });

  test.each(COMMANDS)("freight %s with a bad variable: the server's one line, exit code 1", (name) => {
    const args = name === 'token' ? [name, 'alice'] : [name];
    const result = freight(args, { PORT: 'http' });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      'freight: invalid configuration: PORT must be an integer from 0 to 65535, got "http"',
    ]);
    expect(result.stdout).toBe('');
  });

  test('an unknown option or a stray argument: exit code 2 and a pointer to --help', () => {
    for (const args of [
      ['uploads', '--colour'],
      ['migrate', 'now'],
      ['token'],
      ['token', 'a', 'b'],
      ['uploads', '--limit', '0'],
      ['uploads', '--status', 'done'],
    ]) {
      const result = freight(args, onPostgres());
      expect(result.status, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(new RegExp(`^freight ${args[0]}: .*\\(see freight ${args[0]} --help\\)\\n$`));
    }
  });
});

describe('freight token', () => {
  test('a token the server accepts, for --ttl, with the configured issuer and audience', async () => {
    const result = freight(['token', 'alice', '--ttl', '1h'], {
      AUTH_JWT_SECRET: JWT_SECRET,
      AUTH_JWT_ISSUER: 'https://id.example.com',
      AUTH_JWT_AUDIENCE: 'freight',
    });
    expect(result.status).toBe(0);
    const { payload } = await jwtVerify(result.stdout.trim(), new TextEncoder().encode(JWT_SECRET));
    expect(payload).toMatchObject({ sub: 'alice', iss: 'https://id.example.com', aud: 'freight' });
    expect(payload.exp! - payload.iat!).toBe(3600);

    const byDefault = freight(['token', 'bob'], { AUTH_JWT_SECRET: JWT_SECRET });
    const { payload: day } = await jwtVerify(byDefault.stdout.trim(), new TextEncoder().encode(JWT_SECRET));
    expect(day.exp! - day.iat!).toBe(86_400);

    expect(freight(['token', 'bob', '--ttl', 'soon'], { AUTH_JWT_SECRET: JWT_SECRET }).status).toBe(2);
    const disabled = freight(['token', 'bob'], { AUTH_DISABLED: 'true' });
    expect(disabled.status).toBe(1);
    expect(disabled.stderr).toMatch(/AUTH_DISABLED=true/);
  });
});

describe('freight migrate', () => {
  const name = `freight_cli_${randomUUID().slice(0, 8)}`;
  const sql = testSql();
  const url = () => {
    const parsed = new URL(testDatabaseUrl());
    parsed.pathname = `/${name}`;
    return parsed.toString();
  };
  afterAll(async () => {
    await sql.unsafe(`drop database if exists ${name}`);
    await sql.end();
  });

  test('applies every migration to an empty database, and again is a no-op', async () => {
    await sql.unsafe(`create database ${name}`);
    for (let run = 0; run < 2; run++) {
      const result = freight(['migrate'], { DATABASE_URL: url(), AUTH_JWT_SECRET: JWT_SECRET });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^migrations applied to PostgreSQL database "${name}" on `));
    }
    const fresh = (await import('postgres')).default(url(), { max: 1, onnotice: () => {} });
    try {
      const [row] = await fresh`select to_regclass('file_uploads') as uploads, to_regclass('upload_parts') as parts`;
      expect(row).toEqual({ uploads: 'file_uploads', parts: 'upload_parts' });
    } finally {
      await fresh.end();
    }
  });
});

describe('freight uploads', () => {
  let server: RunningFreight;
  const user = uniqueUser('cli');
  const ids: Record<'done' | 'open', string> = { done: '', open: '' };

  beforeAll(async () => {
    server = await startFreight({ ...onPostgres(), LOG_LEVEL: 'silent' });
    const auth = { Authorization: `Bearer ${await tokenFor(user)}`, 'Tus-Resumable': '1.0.0' };
    const create = async (name: string, length: number) => {
      const res = await fetch(`${server.url}/files/`, {
        method: 'POST',
        headers: {
          ...auth,
          'Upload-Length': String(length),
          'Upload-Metadata': `filename ${Buffer.from(name).toString('base64')}`,
        },
      });
      return res.headers.get('location')!;
    };
    const open = await create('still\r\ngoing.bin', 100);
    const done = await create('done.bin', 10);
    await fetch(done, {
      method: 'PATCH',
      headers: { ...auth, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: randomData(10),
    });
    ids.open = open.split('/').pop()!;
    ids.done = done.split('/').pop()!;
    // someone else's, which a --user filter leaves out
    await fetch(`${server.url}/files/`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${await tokenFor(uniqueUser('other'))}`,
        'Tus-Resumable': '1.0.0',
        'Upload-Length': '5',
      },
    });
  });
  afterAll(() => server?.close());

  test("lists a user's uploads, newest first, as JSON and as a table, filtered by status and limited", () => {
    const listed = freight(['uploads', '--user', user, '--json'], onPostgres());
    expect(listed.status, listed.stderr).toBe(0);
    const uploads = JSON.parse(listed.stdout) as Array<{
      id: string;
      status: string;
      userId: string;
      filename: string;
    }>;
    expect(uploads.map((upload) => upload.id)).toEqual([ids.done, ids.open]);
    expect(uploads.map((upload) => upload.status)).toEqual(['completed', 'pending']);
    expect(uploads[1]!.filename).toBe('still\r\ngoing.bin');

    const completed = JSON.parse(
      freight(['uploads', '--user', user, '--status', 'completed', '--json'], onPostgres()).stdout,
    );
    expect(completed.map((upload: { id: string }) => upload.id)).toEqual([ids.done]);
    expect(
      JSON.parse(freight(['uploads', '--user', user, '--limit', '1', '--json'], onPostgres()).stdout),
    ).toHaveLength(1);

    const table = freight(['uploads', '--user', user], onPostgres());
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+USER\s+PROTOCOL\s+STATUS\s+SIZE\s+RECEIVED\s+CREATED\s+FILENAME$/);
    expect(lines).toHaveLength(3);
    // A file name's CR/LF is shown, not obeyed: one line per upload.
    expect(lines[2]).toContain('still\\u000d\\u000agoing.bin');
    expect(freight(['uploads', '--user', uniqueUser('nobody')], onPostgres()).stdout).toBe('no uploads\n');
  });

  test('shows one upload with its parts; an unknown id is an error', () => {
    const shown = freight(['uploads', ids.done, '--json'], onPostgres());
    expect(shown.status, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      id: ids.done,
      userId: user,
      status: 'completed',
      totalSize: 10,
      parts: [],
    });
    const text = freight(['uploads', ids.open], onPostgres());
    expect(text.stdout).toMatch(/^status:\s+pending$/m);
    expect(text.stdout).toMatch(/^userId:\s+cli-/m);
    const missing = freight(['uploads', randomUUID()], onPostgres());
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^freight uploads: no upload /);
    expect(freight(['uploads', 'not-an-id'], onPostgres()).status).toBe(2);
  });
});

describe('freight serve and freight cleanup', () => {
  test('serve answers /healthz and /metrics, and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI, 'serve'], {
      env: envOf({ ...onPostgres(), PORT: '0' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let log = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          log += chunk.toString();
          const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
          if (match?.[1]) resolve(match[1]);
        });
        void exited.then((code) => reject(new Error(`serve exited with ${code}: ${log}`)));
      });
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/metrics`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  test('cleanup expires an unfinished upload past its expiry (after a dry run that changes nothing)', async () => {
    const sql = testSql();
    try {
      const id = randomUUID();
      await sql`insert into file_uploads (id, user_id, protocol, storage_key, status, stored_offset, expires_at)
                values (${id}, ${uniqueUser('cli-stale')}, 'tus', ${id}, 'uploading', 0, now() - interval '1 hour')`;
      const dry = freight(['cleanup', '--dry-run', '--json'], onPostgres());
      expect(dry.status).toBe(0);
      expect(JSON.parse(dry.stdout)).toMatchObject({ ran: true, dryRun: true });
      expect(JSON.parse(dry.stdout).expired.tus).toBeGreaterThanOrEqual(1);
      expect((await sql`select status from file_uploads where id = ${id}`)[0]?.status).toBe('uploading');

      const real = freight(['cleanup'], onPostgres());
      expect(real.status).toBe(0);
      expect(real.stdout).toMatch(/^expired \d+ uploads/);
      expect((await sql`select status from file_uploads where id = ${id}`)[0]?.status).toBe('expired');
    } finally {
      await sql.end();
    }
  });
});
