/**
 * npm run bench: Freight beside the alternatives, on the same machine, data, gateway and Postgres, in one run.
 *
 *   npm run bench                          512 MiB and 2 GiB, 3 rounds, two instances, microbenchmarks, the load
 *                                          row, a 4 GiB memory run, a 32 GiB soak, the staging measurement
 *   npm run bench -- --size 8GiB --rounds 5
 *   npm run bench -- --size 64MiB --rounds 1 --memory-size 256MiB --soak-size 1GiB     (a quick look)
 *   npm run bench -- --staging             the staging measurement only
 *   npm run bench -- --load                the load row only (400 uploads of 1 MiB, 64 at a time, 20 users)
 *   npm run bench -- --head                the HEAD row only (resume checks/s under 32 clients, Freight and bare)
 *   npm run bench -- --size 512MiB --only 'bare @tus/server' --only 'freight tus'
 *                                          only the rows named (and the limit), nothing else; BENCHMARKS.md is
 *                                          left alone, the results go to bench/results/<date>-only.json
 *
 * Contenders run alternately (A B C D A B C D …); each figure is the median of the rounds. Results go to
 * bench/results/<date>.json, the tables and the RSS plots to BENCHMARKS.md and bench/results/<date>-*.svg.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import {
  ensurePostgres,
  ensureS3,
  repoRoot,
  runCleanups,
  s3ClientFor,
  type Cleanup,
  type S3Settings,
} from '../scripts/services.js';
import { S3_LIMITS, loadConfig } from '../src/config/index.js';
import { parseSize } from '../src/config/units.js';
import {
  benchToken,
  deleteObject,
  directContender,
  limitContender,
  storedObject,
  tusContender,
  type Contender,
} from './contenders.js';
import { startCountingRelay, type CountingRelay } from './counting-relay.js';
import { DataPattern } from './data.js';
import { collectGarbage, gatewayCpu } from './gateway.js';
import { measureInstances } from './instances.js';
import { loadTable, profiledLoad, runLoad, type LoadOptions } from './load.js';
import { log } from './log.js';
import { directCreateLatency, headThroughput, signTenThousand, tusCreateLatency } from './micro.js';
import { GiB, MB, MiB, formatSize } from './numbers.js';
import { cpuSeconds, sample } from './proc.js';
import { benchmarksPage, evaluateTargets, summarize, summaryTable, type BenchResult, type Run } from './report.js';
import { rssSvg } from './rss.js';
import { soak } from './soak.js';
import { measureStaging, stagingTable } from './staging.js';
import { startBareProcess, startFreightProcess, startScript, tunablesSet, type ServerProcess } from './servers.js';

// The AWS SDK is pinned to releases that run on Node 20; its notice about later ones is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const ROOT = repoRoot();
const WORK = path.join(ROOT, 'bench', '.work');

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', multiple: true },
    rounds: { type: 'string', default: '3' },
    'memory-size': { type: 'string', default: '4GiB' },
    'soak-size': { type: 'string', default: '32GiB' },
    'no-micro': { type: 'boolean', default: false },
    'no-memory': { type: 'boolean', default: false },
    'no-instances': { type: 'boolean', default: false },
    'no-soak': { type: 'boolean', default: false },
    'no-staging': { type: 'boolean', default: false },
    staging: { type: 'boolean', default: false },
    'no-load': { type: 'boolean', default: false },
    load: { type: 'boolean', default: false },
    head: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
  },
});
/** `--only`: the throughput rows named, side by side, and nothing else. */
const only = args.only ? new Set(['limit', ...args.only]) : undefined;
const sizes = (args.size ?? ['512MiB', '2GiB'])
  .flatMap((text) => text.split(','))
  .map((text) => {
    const size = parseSize(text);
    if (!size) throw new Error(`--size ${text} is not a size`);
    return size;
  });
const rounds = Number(args.rounds);
const memorySize = parseSize(args['memory-size']!) ?? 4 * GiB;
const soakSize = parseSize(args['soak-size']!);
if (!soakSize) throw new Error(`--soak-size ${args['soak-size']} is not a size`);
/** The PATCH sizes of the chunked rows. */
const CHUNK_SIZES = [5 * MiB, 64 * MiB];
/** Concurrent uploads in the two-instance measurement. */
const INSTANCE_UPLOADS = 4;
/** The load row: many small uploads at once (issue #18's shape: 400 of 1 MiB, 64 at a time, 20 users). */
const LOAD: LoadOptions = { count: 400, size: MiB, concurrency: 64, users: 20 };
/** Rounds of the staging measurement (each about 10 s). */
const STAGING_ROUNDS = 2;

/** One upload's pieces on temp disk: S3_PART_CONCURRENCY waiting for or in their sends, and the one filling. */
function tempDiskBudget(): number {
  const settings = loadConfig({ AUTH_DISABLED: 'true', ...tunablesSet() });
  return (settings.partConcurrency + 1) * settings.partSize;
}

async function measure(
  contender: Contender,
  file: string,
  size: number,
  round: number,
  s3: S3Settings,
  bucket: string,
): Promise<Run> {
  const server = contender.server;
  const cpu0 = server ? cpuSeconds(server.pid) : 0;
  const gateway0 = await gatewayCpu(s3);
  const sampler = sample(server?.pid, server?.tempDir, 100);
  contender.relay?.reset();
  const started = performance.now();
  const { key, requests } = await contender.upload(file, size);
  const seconds = (performance.now() - started) / 1000;
  const relayed = contender.relay?.counts();
  const samples = await sampler.stop();
  const gateway1 = await gatewayCpu(s3);
  const stored = await storedObject(s3, bucket, key);
  if (stored.size !== size) log(`${contender.name}: object ${key} holds ${stored.size} bytes, not ${size}`);
  await deleteObject(s3, bucket, key);
  return {
    contender: contender.name,
    size,
    round,
    seconds,
    mbPerSecond: size / MB / seconds,
    serverCpuSeconds: server ? cpuSeconds(server.pid) - cpu0 : null,
    gatewayCpuSeconds: gateway0 === null || gateway1 === null ? null : gateway1 - gateway0,
    serverPeakRss: server ? samples.peakRss : null,
    peakTempDisk: server ? samples.peakDisk : null,
    requests,
    chunkSize: contender.chunkSize ?? null,
    partsStored: stored.parts,
    objectSize: stored.size,
    s3BytesSent: relayed?.toS3 ?? null,
    s3BytesReceived: relayed?.fromS3 ?? null,
    largestUpload: contender.largestUpload ?? null,
  };
}

async function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    ramGiB: Math.round(os.totalmem() / GiB),
    node: process.version,
    kernel: os.release(),
  };
}

/** The command line that reproduces this run, with the settings passed on to Freight. */
function commandLine(): string {
  const settings = Object.entries(tunablesSet())
    .map(([name, value]) => `${name}=${value} `)
    .join('');
  const given = process.argv.slice(2).join(' ');
  return `${settings}npm run bench${given ? ` -- ${given}` : ''}`;
}

/** The run's S3 gateway and a bucket of its own. */
async function bringUpS3(cleanups: Cleanup[]): Promise<{ s3: S3Settings; bucket: string }> {
  const s3 = await ensureS3(cleanups, 'freight-bench-rgw', { RGW_BLOCK_SIZE: '64G' });
  const bucket = `freight-bench-${Date.now()}`;
  const client = s3ClientFor(s3);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return { s3, bucket };
}

/** `--staging`: the staging measurement alone, printed and recorded in bench/results/<date>-staging.json. */
async function stagingOnly(): Promise<void> {
  const cleanups: Cleanup[] = [];
  try {
    log('bringing up the S3 gateway');
    const { s3, bucket } = await bringUpS3(cleanups);
    const staging = await measureStaging(s3, bucket, STAGING_ROUNDS);
    await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
    const jsonPath = path.join(ROOT, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-staging.json`);
    await writeFile(
      jsonPath,
      `${JSON.stringify({ date: new Date().toISOString(), command: commandLine(), machine: await machine(), staging }, null, 2)}\n`,
    );
    log(`results: ${path.relative(ROOT, jsonPath)}`);
    console.log(`\n${stagingTable(staging).join('\n')}`);
  } finally {
    await runCleanups(cleanups);
  }
}

/** Freight and bare under the load (each warmed up by a tenth of it first), and Freight's profile of it. */
async function measureLoad(freight: ServerProcess, bare: ServerProcess, databaseUrl: string) {
  const warm = { ...LOAD, count: Math.ceil(LOAD.count / 10) };
  await profiledLoad(freight, { ...warm, databaseUrl });
  await runLoad(bare, { ...warm, authenticated: false });
  const { result, profile } = await profiledLoad(freight, { ...LOAD, databaseUrl });
  // Bare @tus/server has no database.
  const bareResult = await runLoad(bare, { ...LOAD, authenticated: false });
  return { options: LOAD, rows: [result, bareResult], profile };
}

/** `--load`: the load row alone (Freight and bare on fresh processes), printed and in bench/results/<date>-load.json. */
async function loadOnly(): Promise<void> {
  const cleanups: Cleanup[] = [];
  const servers: ServerProcess[] = [];
  try {
    log('bringing up PostgreSQL and the S3 gateway');
    const databaseUrl = await ensurePostgres(cleanups, 'freight_bench');
    const { s3, bucket } = await bringUpS3(cleanups);
    const freight = await startFreightProcess(ROOT, WORK, s3, bucket, databaseUrl);
    servers.push(freight);
    const bare = await startBareProcess(ROOT, WORK, s3, bucket);
    servers.push(bare);
    const load = await measureLoad(freight, bare, databaseUrl);
    await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
    const jsonPath = path.join(ROOT, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-load.json`);
    const result = { date: new Date().toISOString(), command: commandLine(), machine: await machine(), load };
    await writeFile(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
    log(`results: ${path.relative(ROOT, jsonPath)}`);
    console.log(`\n${loadTable(load.rows, load.options, load.profile).join('\n')}`);
  } finally {
    for (const server of servers) await server.stop();
    await runCleanups(cleanups);
  }
}

/**
 * `--head`: resume checks per second, Freight and bare on fresh processes (as in the microbenchmarks), with Freight's
 * server CPU per request; printed and in bench/results/<date>-head.json.
 */
async function headOnly(): Promise<void> {
  const cleanups: Cleanup[] = [];
  const servers: ServerProcess[] = [];
  try {
    log('bringing up PostgreSQL and the S3 gateway');
    const databaseUrl = await ensurePostgres(cleanups, 'freight_bench');
    const { s3, bucket } = await bringUpS3(cleanups);
    const freight = await startFreightProcess(ROOT, WORK, s3, bucket, databaseUrl);
    servers.push(freight);
    const bare = await startBareProcess(ROOT, WORK, s3, bucket);
    servers.push(bare);
    const token = await benchToken();
    const options = { clients: 32, seconds: 5, uploads: 32 };
    // A first short round each, unrecorded: the code paths compiled before they are measured.
    await headThroughput(freight.url, token, { ...options, seconds: 1 });
    await headThroughput(bare.url, undefined, { ...options, seconds: 1 });
    const headFreight = await headThroughput(freight.url, token, { ...options, pid: freight.pid });
    const freightCpuMsPerRequest = headFreight.serverCpuMsPerRequest ?? Number.NaN;
    const headBare = await headThroughput(bare.url, undefined, options);
    const result = {
      date: new Date().toISOString(),
      command: commandLine(),
      machine: await machine(),
      headFreight,
      headBare,
      freightCpuMsPerRequest,
    };
    await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
    const jsonPath = path.join(ROOT, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-head.json`);
    await writeFile(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
    log(`results: ${path.relative(ROOT, jsonPath)}`);
    console.log(
      `\nHEAD, 32 clients: Freight ${headFreight.requestsPerSecond}/s (${headFreight.errors} errors, ${freightCpuMsPerRequest.toFixed(3)} ms server CPU each), bare ${headBare.requestsPerSecond}/s (${(headFreight.requestsPerSecond / Math.max(1, headBare.requestsPerSecond)).toFixed(2)}x bare)`,
    );
  } finally {
    for (const server of servers) await server.stop();
    await runCleanups(cleanups);
  }
}

/** `--only`: the rows' results (bench/results/<date>-only.json) and their table, each row also against bare. */
async function onlyRows(runs: Run[], summaries: ReturnType<typeof summarize>): Promise<void> {
  const resultsDir = path.join(ROOT, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const jsonPath = path.join(resultsDir, `${new Date().toISOString().slice(0, 10)}-only.json`);
  const result = { date: new Date().toISOString(), command: commandLine(), machine: await machine(), runs, summaries };
  await writeFile(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  log(`results: ${path.relative(ROOT, jsonPath)}`);
  console.log(`\n${summaryTable(summaries)}`);
  for (const summary of summaries) {
    const bare = summaries.find((s) => s.size === summary.size && s.contender === 'bare @tus/server');
    if (bare)
      console.log(
        `${formatSize(summary.size)} ${summary.contender}: ${(summary.mbPerSecond / bare.mbPerSecond).toFixed(2)}× bare`,
      );
  }
}

async function main() {
  const cleanups: Cleanup[] = [];
  const servers: ServerProcess[] = [];
  const relays: CountingRelay[] = [];
  const benchStarted = Date.now();
  try {
    log('bringing up PostgreSQL and the S3 gateway');
    const databaseUrl = await ensurePostgres(cleanups, 'freight_bench');
    const { s3, bucket } = await bringUpS3(cleanups);
    const data = new DataPattern();
    log(`data files: ${[...sizes, memorySize].map(formatSize).join(', ')} (in bench/.work/)`);
    const files = new Map<number, string>();
    for (const size of new Set([...sizes, memorySize])) files.set(size, await data.file(WORK, size));

    const start = async <T extends ServerProcess>(server: Promise<T>) => {
      const started = await server;
      servers.push(started);
      return started;
    };
    const relayed = async () => {
      const relay = await startCountingRelay(s3.endpoint);
      relays.push(relay);
      return relay;
    };
    const freight = await start(startFreightProcess(ROOT, WORK, s3, bucket, databaseUrl));
    // The same without the running SHA-256: what hashing costs.
    const freightUnhashed = await start(
      startFreightProcess(ROOT, WORK, s3, bucket, databaseUrl, {
        name: 'freight-unhashed',
        env: { UPLOAD_SHA256: 'false' },
      }),
    );
    // The direct path on a process of its own: its server CPU is then its own work, not the collector's
    // clean-up after the tus rows that ran before it on a shared process.
    const freightDirect = await start(
      startFreightProcess(ROOT, WORK, s3, bucket, databaseUrl, { name: 'freight-direct' }),
    );
    const bare = await start(startBareProcess(ROOT, WORK, s3, bucket));
    // The chunked rows' servers, each reaching S3 through a counting relay of its own.
    const freightRelay = await relayed();
    const freightRelayed = await start(
      startFreightProcess(ROOT, WORK, { ...s3, endpoint: freightRelay.url }, bucket, databaseUrl, {
        name: 'freight-relayed',
      }),
    );
    const bareRelay = await relayed();
    const bareRelayed = await start(
      startBareProcess(ROOT, WORK, { ...s3, endpoint: bareRelay.url }, bucket, 'bare-relayed'),
    );
    const token = await benchToken();
    const freightMaxUpload = loadConfig({ AUTH_DISABLED: 'true', ...tunablesSet() }).maxUploadSize;
    const allContenders = [
      limitContender(s3, bucket),
      tusContender('bare @tus/server', bare, undefined),
      tusContender('freight tus', freight, token),
      tusContender('freight tus, UPLOAD_SHA256=false', freightUnhashed, token),
      tusContender('freight tus, parallelUploads 4', freight, token, { parallelUploads: 4 }),
      directContender(freightDirect, token),
      ...CHUNK_SIZES.flatMap((chunkSize) => [
        tusContender(`bare @tus/server, ${formatSize(chunkSize)} PATCHes`, bareRelayed, undefined, {
          chunkSize,
          relay: bareRelay,
          // @tus/s3-store ends a part at the end of every PATCH, and S3 takes 10,000 parts.
          largestUpload: S3_LIMITS.maxParts * chunkSize,
        }),
        tusContender(`freight tus, ${formatSize(chunkSize)} PATCHes`, freightRelayed, token, {
          chunkSize,
          relay: freightRelay,
          largestUpload: freightMaxUpload,
        }),
      ]),
    ];
    const contenders = only ? allContenders.filter((contender) => only.has(contender.name)) : allContenders;
    if (only && contenders.length !== only.size) {
      const known = allContenders.map((contender) => contender.name).join('; ');
      throw new Error(`--only names a row that does not exist (the rows: ${known})`);
    }

    // Unrecorded uploads first (one each, or the contender's warmUps), so that no contender is measured while its
    // code is still being compiled.
    const warmUp = await data.file(WORK, 32 * MiB);
    for (const contender of contenders) {
      for (let i = 0; i < (contender.warmUps ?? 1); i++) await measure(contender, warmUp, 32 * MiB, 0, s3, bucket);
    }

    const runs: Run[] = [];
    for (const size of sizes) {
      for (let round = 1; round <= rounds; round++) {
        for (const contender of contenders) {
          const result = await measure(contender, files.get(size)!, size, round, s3, bucket);
          runs.push(result);
          log(`${formatSize(size)} round ${round} ${contender.name}: ${result.mbPerSecond.toFixed(1)} MB/s`);
        }
        await collectGarbage(s3);
      }
    }
    const summaries = summarize(runs);
    if (only) {
      await onlyRows(runs, summaries);
      return;
    }

    let instances: BenchResult['instances'];
    if (!args['no-instances']) {
      const size = Math.min(...sizes);
      log(`two instances: ${INSTANCE_UPLOADS} concurrent uploads of ${formatSize(size)}`);
      const second = await start(
        startFreightProcess(ROOT, WORK, s3, bucket, databaseUrl, {
          name: 'freight-second',
          sharedDataDir: path.dirname(freight.tempDir),
        }),
      );
      instances = await measureInstances({
        instances: [freight, second],
        token,
        file: files.get(size)!,
        size,
        uploads: INSTANCE_UPLOADS,
        rounds,
        s3,
        bucket,
      });
      await second.stop();
    }

    let memory: BenchResult['memory'];
    if (!args['no-memory']) {
      log(`memory over a ${formatSize(memorySize)} upload (RSS sampled each second)`);
      const series = [];
      for (const name of ['freight tus', 'bare @tus/server']) {
        const contender = contenders.find((c) => c.name === name)!;
        const server = contender.server!;
        const sampler = sample(server.pid, undefined, 1000);
        const { key } = await contender.upload(files.get(memorySize)!, memorySize);
        const samples = await sampler.stop();
        await deleteObject(s3, bucket, key);
        await collectGarbage(s3);
        series.push({ name: contender.name, points: samples.rss });
      }
      memory = { size: memorySize, series };
    }

    let micro: BenchResult['micro'] = {};
    if (!args['no-micro']) {
      log('microbenchmarks');
      micro = {
        headFreight: await headThroughput(freight.url, token, {
          clients: 32,
          seconds: 5,
          uploads: 32,
          pid: freight.pid,
        }),
        headBare: await headThroughput(bare.url, undefined, { clients: 32, seconds: 5, uploads: 32 }),
        createTusFreight: await tusCreateLatency(freight.url, token, 200),
        createTusBare: await tusCreateLatency(bare.url, undefined, 200),
        createDirectFreight: await directCreateLatency(freight.url, token, 200),
        sign10k: await signTenThousand(freight.url, token),
      };
      log(JSON.stringify(micro));
    }

    let load: BenchResult['load'];
    if (!args['no-load']) {
      log(
        `load: ${LOAD.count} uploads of ${formatSize(LOAD.size)}, ${LOAD.concurrency} at a time, ${LOAD.users} users`,
      );
      load = await measureLoad(freight, bare, databaseUrl);
    }

    // The servers of the throughput rows are idle from here on: stopped, so the soak has the machine.
    for (const server of servers.splice(0)) await server.stop();

    let soakResult: BenchResult['soak'];
    if (!args['no-soak']) {
      log(`soak: ${formatSize(soakSize!)} in 64 MiB PATCHes`);
      soakResult = await soak({ root: ROOT, workDir: WORK, s3, bucket, databaseUrl, token, totalSize: soakSize! });
    }

    let staging: BenchResult['staging'];
    if (!args['no-staging']) {
      log('staging and copying a part, or re-uploading it');
      staging = await measureStaging(s3, bucket, STAGING_ROUNDS);
    }

    const date = new Date().toISOString().slice(0, 10);
    const result: BenchResult = {
      date: new Date().toISOString(),
      command: commandLine(),
      machine: await machine(),
      sizes,
      rounds,
      durationSeconds: Math.round((Date.now() - benchStarted) / 1000),
      runs,
      summaries,
      micro,
      memory,
      tempDiskBudget: tempDiskBudget(),
      freightStart: await startScript(ROOT),
      instances,
      load,
      soak: soakResult,
      staging,
    };
    const targets = evaluateTargets(result);
    const resultsDir = path.join(ROOT, 'bench', 'results');
    await mkdir(resultsDir, { recursive: true });
    const jsonPath = path.join(resultsDir, `${date}.json`);
    await writeFile(jsonPath, `${JSON.stringify({ ...result, targets }, null, 2)}\n`);
    const plots: { memory?: string; soak?: string } = {};
    if (memory) {
      plots.memory = `${date}-rss.svg`;
      const colors = ['#d62728', '#1f77b4'];
      await writeFile(
        path.join(resultsDir, plots.memory),
        rssSvg(
          memory.series.map((s, i) => ({ ...s, color: colors[i]! })),
          `Server RSS during a ${formatSize(memory.size)} tus upload`,
        ),
      );
    }
    if (soakResult) {
      plots.soak = `${date}-soak-rss.svg`;
      await writeFile(
        path.join(resultsDir, plots.soak),
        rssSvg(
          [{ name: 'freight tus (S3_MAX_PARTS=100)', color: '#d62728', points: soakResult.rss }],
          `Server RSS over a ${formatSize(soakResult.totalSize)} soak in ${formatSize(soakResult.chunkSize)} PATCHes`,
        ),
      );
    }
    await writeFile(path.join(ROOT, 'BENCHMARKS.md'), benchmarksPage(result, targets, plots));
    const written = [
      path.relative(ROOT, jsonPath),
      'BENCHMARKS.md',
      ...Object.values(plots).map((name) => `bench/results/${name}`),
    ];
    log(`results: ${written.join(', ')} (${(result.durationSeconds / 60).toFixed(1)} minutes)`);
    console.log(`\n${summaryTable(summaries)}`);
    if (staging) console.log(stagingTable(staging).join('\n'));
    for (const target of targets)
      console.log(`${target.met ? 'met    ' : 'NOT MET'}  ${target.target}: ${target.measured}`);
  } finally {
    for (const server of servers) await server.stop();
    for (const relay of relays) await relay.close();
    await runCleanups(cleanups);
  }
}

(args.staging ? stagingOnly() : args.load ? loadOnly() : args.head ? headOnly() : main()).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
