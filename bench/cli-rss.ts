/**
 * npm run bench:cli: the memory of `freight upload` itself, per mode, for one large file with large parts.
 *
 *   npm run bench:cli                                      1 GiB, 256 MiB parts, --direct and tus
 *   npm run bench:cli -- --size 4GiB --chunk-size 512MiB
 *
 * Starts PostgreSQL and a Ceph RGW as `npm test` does (or uses DATABASE_URL / S3_*) and Freight as `npm start`
 * runs it, uploads a file of random bytes with the command as a user runs it (`node dist/src/cli/main.js`), and
 * samples the command's RSS every 50 ms. The bound: under 256 MB whatever the part size.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { ensurePostgres, ensureS3, repoRoot, runCleanups, s3ClientFor, type Cleanup } from '../scripts/services.js';
import { parseSize } from '../src/config/units.js';
import { benchToken } from './contenders.js';
import { sample } from './proc.js';
import { MiB, formatSize } from './numbers.js';
import { startFreightProcess } from './servers.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const ROOT = repoRoot();
const WORK = path.join(ROOT, 'bench', '.work', 'cli');
const { values: args } = parseArgs({
  options: { size: { type: 'string', default: '1GiB' }, 'chunk-size': { type: 'string', default: '256MiB' } },
});
const size = parseSize(args.size)!;
const chunkSize = args['chunk-size'];

async function writeRandomFile(file: string, bytes: number): Promise<void> {
  const handle = await open(file, 'w');
  try {
    const block = randomBytes(16 * MiB);
    for (let written = 0; written < bytes; written += block.length) {
      await handle.write(block.subarray(0, Math.min(block.length, bytes - written)));
      block[0] = (block[0]! + 1) & 0xff; // no two blocks alike
    }
  } finally {
    await handle.close();
  }
}

async function measure(mode: 'direct' | 'tus', file: string, endpoint: string, token: string) {
  const stateHome = path.join(WORK, `state-${mode}`);
  await rm(stateHome, { recursive: true, force: true });
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [
      path.join(ROOT, 'dist', 'src', 'cli', 'main.js'),
      'upload',
      file,
      '--endpoint',
      endpoint,
      '--token',
      token,
      '--chunk-size',
      chunkSize,
      ...(mode === 'direct' ? ['--direct'] : []),
    ],
    {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', XDG_STATE_HOME: stateHome },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let errors = '';
  child.stderr!.on('data', (chunk: Buffer) => (errors = (errors + chunk.toString()).slice(-2000)));
  const sampler = sample(child.pid, undefined, 50);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const samples = await sampler.stop();
  if (code !== 0) throw new Error(`freight upload --${mode} exited ${code}: ${errors}`);
  const seconds = (Date.now() - started) / 1000;
  return { mode, chunkSize, size, seconds, peakRssMiB: Math.round((samples.peakRss / MiB) * 10) / 10 };
}

const cleanups: Cleanup[] = [];
try {
  await mkdir(WORK, { recursive: true });
  const [databaseUrl, s3] = await Promise.all([
    ensurePostgres(cleanups, `freight_bench_cli_${process.pid}`),
    ensureS3(cleanups, 'freight-bench-cli-rgw'),
  ]);
  const bucket = `bench-cli-${process.pid}`;
  const client = s3ClientFor(s3);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  const server = await startFreightProcess(ROOT, WORK, s3, bucket, databaseUrl);
  cleanups.push(() => server.stop());
  const file = path.join(WORK, 'upload.bin');
  await writeRandomFile(file, size);
  cleanups.push(() => rm(file, { force: true }));
  const token = await benchToken();
  console.log(`freight upload of ${formatSize(size)} with ${chunkSize} parts/chunks: peak RSS of the command`);
  for (const mode of ['direct', 'tus'] as const) {
    const result = await measure(mode, file, server.url, token);
    console.log(
      `  ${mode.padEnd(6)}  ${result.peakRssMiB} MiB peak RSS, ${result.seconds.toFixed(1)} s (${formatSize(size / result.seconds)}/s)`,
    );
  }
} finally {
  await runCleanups(cleanups);
}
