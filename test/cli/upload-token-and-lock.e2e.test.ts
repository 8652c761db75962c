/**
 * `freight upload` and the two things a person must be able to trust it with: the token (kept out of `ps`, sent
 * to the --endpoint origin only) and the resume state (one run per file at a time). Real processes, a real
 * Freight on real PostgreSQL and S3, and tiny HTTP servers standing for other origins, which record every request
 * they get.
 */
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { repoRoot } from '../../scripts/services.js';
import {
  eventually,
  freightOnS3,
  MiB,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  startFreight,
  tokenFor,
  uniqueUser,
} from '../helpers/harness.js';
import { holdingProxy } from '../helpers/proxy.js';
import { runCli, type CliRun } from './cli-process.js';

const ctx = freightOnS3('freight-cli-guards');
let workDir: string;
let stateHome: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'freight-cli-guards-'));
  stateHome = path.join(workDir, 'state');
});
afterAll(() => rm(workDir, { recursive: true, force: true }));

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { XDG_STATE_HOME: stateHome, ...env });

async function localFile(name: string, size: number): Promise<{ file: string; data: Buffer }> {
  const data = randomData(size);
  const file = path.join(workDir, name);
  await writeFile(file, data);
  return { file, data };
}

async function uploadRows(user: string) {
  return ctx.sql`select id, status, bytes_received, storage_key from file_uploads where user_id = ${user}`;
}

/** What `ps` shows of a process (its /proc cmdline, NULs as spaces), once it runs the CLI (after exec). */
async function commandLine(run: CliRun, ready: (line: string) => boolean): Promise<string> {
  return eventually(async () => {
    const line = (await readFile(`/proc/${run.child.pid}/cmdline`, 'utf8')).replace(/\0+/g, ' ').trim();
    return ready(line) ? line : undefined;
  }, 10_000);
}

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
}

/** An HTTP server on its own port (another origin) that records each request, then lets `handle` answer it. */
async function origin(handle: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization });
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A tus upload host that needs no token (the URL is the capability), as some services hand out: HEAD and PATCH. */
function capabilityUploadHost(size: number) {
  const received: Buffer[] = [];
  let offset = 0;
  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const tus = { 'Tus-Resumable': '1.0.0', 'Cache-Control': 'no-store' };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...tus, 'Upload-Offset': String(offset), 'Upload-Length': String(size) }).end();
      return;
    }
    if (req.method !== 'PATCH' || Number(req.headers['upload-offset']) !== offset) {
      res.writeHead(409, tus).end();
      return;
    }
    req.on('data', (chunk: Buffer) => {
      received.push(chunk);
      offset += chunk.length;
    });
    req.on('end', () => res.writeHead(204, { ...tus, 'Upload-Offset': String(offset) }).end());
  };
  return { handle, bytes: () => Buffer.concat(received) };
}

describe('the token', () => {
  test("from FREIGHT_TOKEN and from --token-file: the upload is the token's user's, and the token is never on the command line", async () => {
    const { file, data } = await localFile('token-sources.bin', 2 * MiB + 1);
    const tokenFile = path.join(workDir, 'token');
    for (const source of ['FREIGHT_TOKEN', '--token-file'] as const) {
      const user = uniqueUser(`cli-${source === 'FREIGHT_TOKEN' ? 'env' : 'file'}`);
      const token = await tokenFor(user);
      const args = ['upload', file, '--endpoint', ctx.freight.url, '--json'];
      let run: CliRun;
      if (source === 'FREIGHT_TOKEN') run = cli(args, { FREIGHT_TOKEN: token });
      else {
        await writeFile(tokenFile, `${token}\n`);
        await chmod(tokenFile, 0o600);
        run = cli([...args, '--token-file', tokenFile]);
      }
      const shown = await commandLine(run, (line) => line.includes('main.js'));
      expect(shown).not.toContain(token);
      expect(await run.exited, run.stderr()).toBe(0);
      const rows = await uploadRows(user);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ status: 'completed' });
      expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, rows[0]!.storage_key)).toBe(sha256(data));
    }
  });

  test('--token still works, and is blanked from what ps shows once the command has started', async () => {
    const proxy = await holdingProxy(ctx.freight.url);
    try {
      const user = uniqueUser('cli-argv');
      const token = await tokenFor(user);
      const { file } = await localFile('token-argv.bin', 1000);
      // Held: the command waits for the server's first answer, so that it is seen running.
      await proxy.hold();
      const run = cli(['upload', file, '--endpoint', proxy.url, '--token', token]);
      const shown = await commandLine(run, (line) => line.startsWith('freight upload'));
      expect(shown).not.toContain(token);
      expect(shown).toContain('--token ***');
      await proxy.release();
      expect(await run.exited, run.stderr()).toBe(0);
      expect(await uploadRows(user)).toMatchObject([{ status: 'completed' }]);
    } finally {
      await proxy.down();
    }
  });

  test('--help says --token shows in ps and names the other ways', () => {
    const help = spawnSync(
      process.execPath,
      [path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js'), 'upload', '--help'],
      {
        encoding: 'utf8',
      },
    );
    expect(help.status).toBe(0);
    const option = help.stdout.slice(help.stdout.indexOf('  --token T'), help.stdout.indexOf('  --direct'));
    expect(option).toMatch(/every user of this machine sees it in ps/);
    expect(option).toMatch(/\$FREIGHT_TOKEN or --token-file/);
  });

  test('--token with --token-file, or a token file that cannot be read: one line, exit 2', async () => {
    const { file } = await localFile('token-mistakes.bin', 10);
    const both = cli(['upload', file, '--endpoint', ctx.freight.url, '--token', 'x', '--token-file', '/dev/null']);
    expect(await both.exited).toBe(2);
    expect(both.stderr()).toMatch(/^freight upload: give the token one way: --token or --token-file\n/);
    const missing = cli(['upload', file, '--endpoint', ctx.freight.url, '--token-file', path.join(workDir, 'absent')]);
    expect(await missing.exited).toBe(2);
    expect(missing.stderr()).toMatch(/^freight upload: cannot read --token-file .*absent: ENOENT/);
  });
});

describe('an upload URL on another origin', () => {
  test('is used without the token: a host that needs none gets the whole file and never sees the Authorization header', async () => {
    const user = uniqueUser('cli-capability');
    const token = await tokenFor(user);
    const { file, data } = await localFile('capability.bin', 3 * MiB + 3);
    const host = capabilityUploadHost(data.length);
    const uploads = await origin(host.handle);
    // The creation endpoint (the --endpoint origin) hands out an upload URL on the other origin.
    const api = await origin((req, res) => {
      const tus = { 'Tus-Resumable': '1.0.0', 'Tus-Version': '1.0.0' };
      if (req.method === 'OPTIONS') res.writeHead(204, tus).end();
      else if (req.method === 'POST') res.writeHead(201, { ...tus, Location: `${uploads.url}/uploads/abc` }).end();
      else res.writeHead(405, tus).end();
    });
    try {
      const run = cli(['upload', file, '--endpoint', api.url, '--chunk-size', '1MiB'], { FREIGHT_TOKEN: token });
      expect(await run.exited, run.stderr()).toBe(0);
      expect(api.seen.filter((request) => request.method === 'POST')).toEqual([
        { method: 'POST', url: '/files/', authorization: `Bearer ${token}` },
      ]);
      // Four PATCHes and the closing HEAD, all without the token.
      expect(uploads.seen.map((request) => request.method)).toEqual(['PATCH', 'PATCH', 'PATCH', 'PATCH', 'HEAD']);
      expect(uploads.seen.map((request) => request.authorization)).toEqual(Array(5).fill(undefined));
      expect(host.bytes().equals(data)).toBe(true);
    } finally {
      await api.close();
      await uploads.close();
    }
  });

  test('Freight whose PUBLIC_URL is another origin: that origin never sees the token; the refusal says why, in one line', async () => {
    let target = '';
    // Forwards to Freight whatever it gets: what the CLI sends to the other origin reaches Freight as sent.
    const elsewhere = await origin((req, res) => {
      const upstream = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
      req.pipe(upstream);
    });
    const freight = await startFreight(serviceEnv(ctx.bucket.bucket, { PUBLIC_URL: elsewhere.url }));
    target = freight.url;
    try {
      const user = uniqueUser('cli-public-url');
      const token = await tokenFor(user);
      // Small: the whole PATCH is in Freight's hands before it refuses it (and closes the connection).
      const { file } = await localFile('public-url.bin', 1000);
      const run = cli(['upload', file, '--endpoint', freight.url], { FREIGHT_TOKEN: token });
      expect(await run.exited).toBe(1);
      // One line says what happened (a progress line may come before it).
      const lines = run
        .stderr()
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('freight upload:'));
      expect(lines, run.stderr()).toHaveLength(1);
      expect(lines[0]).toBe(
        `freight upload: refused: PATCH ${elsewhere.url}/files/${(await uploadRows(user))[0]!.id}: 401 ERR_UNAUTHORIZED: missing Authorization header (expected "Bearer <token>") (the server sent this upload to ${elsewhere.url}; the token is only sent to ${freight.url})`,
      );
      expect(elsewhere.seen.length).toBeGreaterThan(0);
      expect(elsewhere.seen.filter((request) => request.authorization !== undefined)).toEqual([]);
    } finally {
      await freight.close();
      await elsewhere.close();
    }
  });
});

describe('one run per file', () => {
  const locks = async () =>
    (await readdir(path.join(stateHome, 'freight', 'uploads')).catch(() => [])).filter((name) =>
      name.endsWith('.lock'),
    );

  test('a second run of a file being uploaded says so in one line, exits 75 and sends nothing; the first completes: one upload', async () => {
    const proxy = await holdingProxy(ctx.freight.url);
    try {
      const user = uniqueUser('cli-twice');
      const token = await tokenFor(user);
      const { file, data } = await localFile('twice.bin', 12 * MiB);
      const args = ['upload', file, '--endpoint', proxy.url, '--chunk-size', '2MiB', '--json'];
      const first = cli(args, { FREIGHT_TOKEN: token });
      await eventually(
        async () => (Number((await uploadRows(user))[0]?.bytes_received ?? 0) >= 2 * MiB ? true : undefined),
        60_000,
      );
      await proxy.hold();
      const relayed = proxy.relayed.toTarget;

      const second = cli(args, { FREIGHT_TOKEN: token });
      expect(await second.exited).toBe(75);
      expect(second.stderr().trim()).toMatch(
        new RegExp(
          `^freight upload: ${file}: another freight upload is uploading it \\(pid ${first.child.pid} on ${os.hostname()}, since [^)]+\\); left alone$`,
        ),
      );
      expect(JSON.parse(second.stdout())).toMatchObject({ ok: false, files: [{ status: 'busy' }] });
      // Nothing of the second run reached the server (the relay was held, but connections would have queued).
      expect(proxy.relayed.toTarget).toBe(relayed);

      await proxy.release();
      expect(await first.exited, first.stderr()).toBe(0);
      const rows = await uploadRows(user);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ status: 'completed' });
      expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, rows[0]!.storage_key)).toBe(sha256(data));
      expect(await locks()).toEqual([]);
    } finally {
      await proxy.down();
    }
  });

  test('a run killed with kill -9 leaves its lock behind, and it does not block the next run, which resumes and completes', async () => {
    const proxy = await holdingProxy(ctx.freight.url);
    try {
      const user = uniqueUser('cli-killed');
      const token = await tokenFor(user);
      const { file, data } = await localFile('killed.bin', 12 * MiB);
      const args = ['upload', file, '--endpoint', proxy.url, '--chunk-size', '2MiB', '--json'];
      const first = cli(args, { FREIGHT_TOKEN: token });
      await eventually(
        async () => (Number((await uploadRows(user))[0]?.bytes_received ?? 0) >= 2 * MiB ? true : undefined),
        60_000,
      );
      await proxy.hold();
      first.child.kill('SIGKILL');
      expect(await first.exited).toBeNull();
      await proxy.up();
      expect(await locks()).toHaveLength(1);

      const next = cli(args, { FREIGHT_TOKEN: token });
      expect(await next.exited, next.stderr()).toBe(0);
      expect(JSON.parse(next.stdout()).files[0].resumedFrom).toBeGreaterThanOrEqual(2 * MiB);
      const rows = await uploadRows(user);
      expect(rows).toHaveLength(1);
      expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, rows[0]!.storage_key)).toBe(sha256(data));
      expect(await locks()).toEqual([]);
    } finally {
      await proxy.down();
    }
  });
});
