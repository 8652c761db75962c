/**
 * The real services tests and benchmarks run against, brought up unless the environment names them:
 * - PostgreSQL: DATABASE_URL, else the local server on 127.0.0.1:5432 (its cluster started if it is down), in a
 *   database created for the run and dropped afterwards.
 * - S3: S3_ENDPOINT (+ S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_REGION, S3_FORCE_PATH_STYLE), else a Ceph RGW
 *   started by scripts/s3-local.sh on free ports and purged afterwards.
 * Whatever is started registers its own cleanup.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import postgres from 'postgres';

const run = promisify(execFile);

export type Cleanup = () => Promise<void>;

export interface S3Settings {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
  /** When this run started the gateway itself: its data directory (for daemon pids and garbage collection). */
  rgwDir?: string;
}

/**
 * An S3 client for these settings, with the client settings Freight itself uses on S3-compatible servers, plus
 * `overrides` (timeouts, retries).
 */
export function s3ClientFor(s3: S3Settings, overrides: S3ClientConfig = {}): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    forcePathStyle: s3.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...overrides,
  });
}

/** The S3_* environment variables of a Freight (or a bare tus server) on `bucket` of this S3 server. */
export function s3EnvFor(s3: S3Settings, bucket: string): Record<string, string> {
  return {
    S3_BUCKET: bucket,
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: s3.region,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: String(s3.forcePathStyle),
  };
}

/** The repository root, from scripts/ or from dist/scripts/. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

async function canConnect(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

export async function ensurePostgres(cleanups: Cleanup[], databaseName: string): Promise<string> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  const admin = 'postgres://postgres@127.0.0.1:5432/postgres';
  if (!(await canConnect(admin))) {
    const versions = existsSync('/etc/postgresql') ? readdirSync('/etc/postgresql') : [];
    const version = versions.at(-1);
    if (!version)
      throw new Error('PostgreSQL is not answering on 127.0.0.1:5432 and no local cluster was found; set DATABASE_URL');
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start']);
    cleanups.push(async () => {
      await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'stop']);
    });
    if (!(await canConnect(admin)))
      throw new Error('PostgreSQL started but does not accept connections on 127.0.0.1:5432');
  }
  const sql = postgres(admin, { max: 1, onnotice: () => {} });
  await sql.unsafe(`drop database if exists ${databaseName} with (force)`);
  await sql.unsafe(`create database ${databaseName}`);
  await sql.end();
  cleanups.push(async () => {
    const drop = postgres(admin, { max: 1, onnotice: () => {} });
    await drop.unsafe(`drop database if exists ${databaseName} with (force)`);
    await drop.end();
  });
  return `postgres://postgres@127.0.0.1:5432/${databaseName}`;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export async function ensureS3(
  cleanups: Cleanup[],
  name: string,
  extraEnv: Record<string, string> = {},
): Promise<S3Settings> {
  const env = process.env;
  if (env.S3_ENDPOINT) {
    return {
      endpoint: env.S3_ENDPOINT,
      region: env.S3_REGION ?? 'us-east-1',
      accessKeyId: env.S3_ACCESS_KEY_ID ?? '',
      secretAccessKey: env.S3_SECRET_ACCESS_KEY ?? '',
      forcePathStyle: (env.S3_FORCE_PATH_STYLE ?? 'true') === 'true',
    };
  }
  const dir = path.join(os.tmpdir(), `${name}-${process.pid}`);
  const script = path.join(repoRoot(), 'scripts', 's3-local.sh');
  const scriptEnv = { ...env, ...extraEnv, RGW_PORT: String(await freePort()), RGW_MON_PORT: String(await freePort()) };
  cleanups.push(async () => {
    await run(script, ['stop', '--purge', dir], { env: scriptEnv });
  });
  const { stdout } = await run(script, ['start', dir], { env: scriptEnv, timeout: 300_000 });
  const exported = Object.fromEntries(
    [...stdout.matchAll(/^export (\w+)=(.*)$/gm)].map((match) => [match[1], match[2]]),
  );
  return {
    endpoint: exported.S3_ENDPOINT!,
    region: exported.S3_REGION!,
    accessKeyId: exported.S3_ACCESS_KEY_ID!,
    secretAccessKey: exported.S3_SECRET_ACCESS_KEY!,
    forcePathStyle: true,
    rgwDir: dir,
  };
}

export async function runCleanups(cleanups: Cleanup[]): Promise<void> {
  for (const cleanup of cleanups.reverse()) {
    await cleanup().catch((error: unknown) => console.error('cleanup:', error));
  }
}

/** Debian's Chromium, which the browser tests drive through playwright-core (never a downloaded browser build). */
export const CHROMIUM = '/usr/bin/chromium';

/** Installs Debian's `chromium` package when it is missing (root, as scripts/s3-local.sh installs its gateway). */
export async function ensureChromium(): Promise<string> {
  await ensureDebianPackages({ chromium: CHROMIUM }, { recommends: true });
  return CHROMIUM;
}

/**
 * Installs the Debian packages (name → a file each provides: an absolute path, or a command on PATH) whose file is
 * missing, in one apt-get run (root). `recommends`: with the packages Debian recommends (Chromium's fonts); without
 * them docker-compose does not pull in a Docker engine. A test never skips itself for want of one of them.
 */
export async function ensureDebianPackages(
  packages: Record<string, string>,
  options: { recommends: boolean } = { recommends: false },
): Promise<void> {
  const missing = Object.entries(packages).filter(([, file]) => !isInstalled(file));
  if (missing.length === 0) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-qq'], { env, timeout: 300_000 });
  const install = ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '-qq'];
  if (!options.recommends) install.push('--no-install-recommends');
  await run('apt-get', [...install, ...missing.map(([name]) => name)], {
    env,
    timeout: 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  for (const [name, file] of missing) {
    if (!isInstalled(file)) throw new Error(`apt-get install ${name} left no ${file}`);
  }
}

function isInstalled(file: string): boolean {
  if (path.isAbsolute(file)) return existsSync(file);
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((dir) => dir && existsSync(path.join(dir, file)));
}
