/** The servers under test, each in a process of its own so that its CPU, memory and temp disk can be read. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { freePort, s3EnvFor, type S3Settings } from '../scripts/services.js';

export interface ServerProcess {
  name: string;
  url: string;
  pid: number;
  /** Where it buffers parts. */
  tempDir: string;
  stop(): Promise<void>;
}

export const BENCH_SECRET = 'freight-benchmark-secret-0123456789abcdef';

async function waitUntilAnswering(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${log()}`);
    try {
      const res = await fetch(url, { method: 'OPTIONS' });
      await res.arrayBuffer();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`server at ${url} did not answer: ${log()}`);
}

/** The `npm start` script (package.json), whose environment and Node flags the benchmark runs the server with. */
export async function startScript(root: string): Promise<string> {
  const { scripts } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  return scripts.start;
}

/** `A=1 node --flag script.js` → the variables set before `node`, and the flags given to it. */
function parseStartScript(script: string): { env: Record<string, string>; flags: string[] } {
  const words = script.split(/\s+/);
  const node = words.indexOf('node');
  const env = Object.fromEntries(words.slice(0, node).map((word) => word.split('=', 2) as [string, string]));
  return { env, flags: words.slice(node + 1).filter((word) => word.startsWith('--')) };
}

async function startProcess(
  name: string,
  script: string,
  env: Record<string, string>,
  tempDir: string,
  flags: string[] = [],
): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...flags, script], {
    env: {
      PATH: process.env.PATH ?? '',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...env,
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  let stopping = false;
  child.once('exit', (code, signal) => {
    if (!stopping)
      process.stderr.write(`[bench] ${name} exited unexpectedly (${code ?? signal}); its last output:\n${output}\n`);
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilAnswering(`${url}/files/`, child, () => output);
  return {
    name,
    url,
    pid: child.pid!,
    tempDir,
    stop: async () => {
      stopping = true;
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Freight settings a benchmark run passes on from its own environment, to measure other than the defaults. */
export const TUNABLES = ['S3_PART_SIZE', 'S3_PART_CONCURRENCY'] as const;

/** The TUNABLES set in this process's environment. */
export function tunablesSet(): Record<string, string> {
  return Object.fromEntries(TUNABLES.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])));
}

export interface FreightProcessOptions {
  /** Its name in logs; also names its DATA_DIR (`<workDir>/<name>-data`) unless `dataDir` is given. */
  name?: string;
  /** The DATA_DIR of a running instance to share (its temp files go to a directory of their own in it). */
  sharedDataDir?: string;
  /** Settings on top of the defaults and the TUNABLES. */
  env?: Record<string, string>;
}

/**
 * Freight as `npm start` runs it, with its defaults (except the TUNABLES set and `options.env`), on Postgres and S3.
 * Its DATA_DIR is emptied first, unless it is shared with another instance.
 */
export async function startFreightProcess(
  root: string,
  workDir: string,
  s3: S3Settings,
  bucket: string,
  databaseUrl: string,
  options: FreightProcessOptions = {},
) {
  const name = options.name ?? 'freight';
  const dataDir = options.sharedDataDir ?? path.join(workDir, `${name}-data`);
  if (!options.sharedDataDir) await rm(dataDir, { recursive: true, force: true });
  const start = parseStartScript(await startScript(root));
  return startProcess(
    name,
    path.join(root, 'dist', 'src', 'server.js'),
    {
      ...start.env,
      ...s3EnvFor(s3, bucket),
      DATA_DIR: dataDir,
      DATABASE_URL: databaseUrl,
      // Its connections carry its name (postgres.js reads PGAPPNAME), so they can be told from other processes'.
      PGAPPNAME: name,
      AUTH_JWT_SECRET: BENCH_SECRET,
      LOG_LEVEL: 'warn',
      ...tunablesSet(),
      ...options.env,
    },
    path.join(dataDir, 'tmp'),
    start.flags,
  );
}

/** Bare @tus/server + @tus/s3-store (bench/bare-server.ts), its temp files in a directory of their own. */
export async function startBareProcess(root: string, workDir: string, s3: S3Settings, bucket: string, name = 'bare') {
  const tempDir = path.join(workDir, `${name}-tmp`);
  await rm(tempDir, { recursive: true, force: true });
  await mkdir(tempDir, { recursive: true });
  return startProcess(
    name,
    path.join(root, 'dist', 'bench', 'bare-server.js'),
    { ...s3EnvFor(s3, bucket), TMPDIR: tempDir },
    tempDir,
  );
}
