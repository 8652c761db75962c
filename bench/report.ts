/** The benchmark's outputs: the JSON record, the targets and the markdown page. */
import type { InstancesResult } from './instances.js';
import { instancesSection } from './instances.js';
import { loadTable, type LoadOptions, type LoadProfile, type LoadResult } from './load.js';
import { GiB, MB, MiB, formatSize, median } from './numbers.js';
import { growthText, rssGrowth } from './rss.js';
import { soakSection, type SoakResult } from './soak.js';
import { stagingSection, type StagingResult } from './staging.js';

export interface Run {
  contender: string;
  size: number;
  round: number;
  seconds: number;
  mbPerSecond: number;
  serverCpuSeconds: number | null;
  gatewayCpuSeconds: number | null;
  serverPeakRss: number | null;
  peakTempDisk: number | null;
  requests: number;
  /** The PATCH size of a tus client that splits the body (null: one PATCH, or not tus). */
  chunkSize: number | null;
  /** The parts of the object stored (its ETag suffix), and its size. */
  partsStored: number;
  objectSize: number;
  /** Bytes between the server and S3, through a counting relay (null when the server was not behind one). */
  s3BytesSent: number | null;
  s3BytesReceived: number | null;
  /** The largest upload the server takes at this chunk size (null: no bound from the chunking). */
  largestUpload: number | null;
}

export interface Summary {
  contender: string;
  size: number;
  mbPerSecond: number;
  ratioToLimit: number;
  serverCpuPerGiB: number | null;
  gatewayCpuPerGiB: number | null;
  serverPeakRss: number | null;
  peakTempDisk: number | null;
  requests: number;
  chunkSize: number | null;
  partsStored: number;
  /** Every run's object had the size sent. */
  sizesOk: boolean;
  s3SentPerByte: number | null;
  s3ReceivedPerByte: number | null;
  largestUpload: number | null;
}

const maxOrNull = (values: Array<number | null>): number | null => {
  const known = values.filter((value): value is number => value !== null);
  return known.length ? Math.max(...known) : null;
};

const medianOrNull = (values: Array<number | null>): number | null => {
  const known = values.filter((value): value is number => value !== null);
  return known.length ? median(known) : null;
};

export function summarize(runs: Run[]): Summary[] {
  const out: Summary[] = [];
  const sizes = [...new Set(runs.map((run) => run.size))];
  for (const size of sizes) {
    const ofSize = runs.filter((run) => run.size === size);
    const contenders = [...new Set(ofSize.map((run) => run.contender))];
    const limit = median(ofSize.filter((run) => run.contender === 'limit').map((run) => run.mbPerSecond));
    for (const contender of contenders) {
      const mine = ofSize.filter((run) => run.contender === contender);
      const perGiB = (value: number | null) => (value === null ? null : value / (size / GiB));
      const cpu = mine.map((run) => run.serverCpuSeconds).filter((value): value is number => value !== null);
      const gateway = mine.map((run) => run.gatewayCpuSeconds).filter((value): value is number => value !== null);
      const mbPerSecond = median(mine.map((run) => run.mbPerSecond));
      out.push({
        contender,
        size,
        mbPerSecond,
        ratioToLimit: limit ? mbPerSecond / limit : NaN,
        serverCpuPerGiB: cpu.length ? perGiB(median(cpu)) : null,
        gatewayCpuPerGiB: gateway.length ? perGiB(median(gateway)) : null,
        serverPeakRss: maxOrNull(mine.map((run) => run.serverPeakRss)),
        peakTempDisk: maxOrNull(mine.map((run) => run.peakTempDisk)),
        requests: median(mine.map((run) => run.requests)),
        chunkSize: mine[0]!.chunkSize,
        partsStored: median(mine.map((run) => run.partsStored)),
        sizesOk: mine.every((run) => run.objectSize === size),
        s3SentPerByte: medianOrNull(mine.map((run) => (run.s3BytesSent === null ? null : run.s3BytesSent / size))),
        s3ReceivedPerByte: medianOrNull(
          mine.map((run) => (run.s3BytesReceived === null ? null : run.s3BytesReceived / size)),
        ),
        largestUpload: mine[0]!.largestUpload,
      });
    }
  }
  return out;
}

const num = (value: number | null, digits: number, unit = '') =>
  value === null || Number.isNaN(value) ? '—' : `${value.toFixed(digits)}${unit}`;

export function summaryTable(summaries: Summary[]): string {
  const lines: string[] = [];
  for (const size of [...new Set(summaries.map((s) => s.size))]) {
    lines.push(`**${formatSize(size)}**`, '');
    lines.push(
      '| contender | MB/s (median) | × limit | server CPU s/GiB | gateway CPU s/GiB | server peak RSS | peak temp disk | requests | parts stored | bytes to / from S3 per byte | largest upload |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of summaries.filter((summary) => summary.size === size)) {
      const parts = s.sizesOk ? String(s.partsStored) : `${s.partsStored}, **wrong size**`;
      const s3 = s.s3SentPerByte === null ? '—' : `${num(s.s3SentPerByte, 3)} / ${num(s.s3ReceivedPerByte, 3)}`;
      const largest = s.largestUpload === null ? '—' : formatLargest(s.largestUpload);
      lines.push(
        `| ${s.contender} | ${s.mbPerSecond.toFixed(1)} | ${num(s.ratioToLimit, 2, '×')} | ${num(s.serverCpuPerGiB, 3)} | ${num(s.gatewayCpuPerGiB, 2)} | ${num(s.serverPeakRss === null ? null : s.serverPeakRss / MiB, 0, ' MiB')} | ${num(s.peakTempDisk === null ? null : s.peakTempDisk / MiB, 0, ' MiB')} | ${s.requests} | ${parts} | ${s3} | ${largest} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

const formatLargest = (bytes: number) => (bytes % GiB === 0 ? formatSize(bytes) : `${(bytes / GiB).toFixed(1)} GiB`);

export interface Target {
  target: string;
  measured: string;
  met: boolean;
}

export interface BenchResult {
  date: string;
  command: string;
  machine: { cpus: number; cpuModel: string; ramGiB: number; node: string; kernel: string };
  sizes: number[];
  rounds: number;
  durationSeconds: number;
  runs: Run[];
  summaries: Summary[];
  micro: {
    headFreight?: { requestsPerSecond: number; serverCpuMsPerRequest?: number };
    headBare?: { requestsPerSecond: number };
    createTusFreight?: { medianMs: number; p95Ms: number };
    createTusBare?: { medianMs: number; p95Ms: number };
    createDirectFreight?: { medianMs: number; p95Ms: number };
    sign10k?: { createMs: number; signMs: number; urls: number };
  };
  memory?: { size: number; series: Array<{ name: string; points: Array<[number, number]> }> };
  /** The temp-disk budget of the tus path with the defaults (S3_PART_CONCURRENCY × part size + one partial part). */
  tempDiskBudget: number;
  /** How Freight was run: the `npm start` script. */
  freightStart: string;
  instances?: InstancesResult;
  /** Many small uploads at once (bench/load.ts), Freight and bare in the same run. */
  load?: { options: LoadOptions; rows: LoadResult[]; profile?: LoadProfile };
  soak?: SoakResult;
  staging?: StagingResult;
}

/**
 * Where the CPU of the machine went at the largest size: cores kept busy by the server and by the gateway while
 * each contender ran (CPU seconds per GiB × GiB per second). The client's share is what remains of the machine.
 */
export function boundsParagraph(result: BenchResult): string[] {
  const size = Math.max(...result.sizes);
  const rows = result.summaries.filter((s) => s.size === size);
  const cores = (perGiB: number | null, s: Summary) => (perGiB === null ? 0 : (perGiB * s.mbPerSecond * MB) / GiB);
  return [
    `What bounds throughput: client, server and gateway share the machine's ${result.machine.cpus} cores. Cores kept busy at`,
    `${formatSize(size)} (CPU seconds per GiB × GiB per second); the client has what remains:`,
    '',
    ...rows.map(
      (s) =>
        `- ${s.contender} at ${s.mbPerSecond.toFixed(0)} MB/s: ` +
        (s.serverCpuPerGiB === null ? 'no server, ' : `server ${cores(s.serverCpuPerGiB, s).toFixed(2)}, `) +
        `gateway ${cores(s.gatewayCpuPerGiB, s).toFixed(2)}`,
    ),
    '',
  ];
}

export function evaluateTargets(result: BenchResult): Target[] {
  const targets: Target[] = [];
  const find = (contender: string, size: number) =>
    result.summaries.find((s) => s.contender === contender && s.size === size);
  for (const size of result.sizes) {
    const tus = find('freight tus', size);
    const bare = find('bare @tus/server', size);
    const direct = find('freight direct', size);
    if (tus && bare) {
      const ratio = tus.mbPerSecond / bare.mbPerSecond;
      targets.push({
        target: `freight tus (the defaults: SHA-256 on) ≥ 1.3× bare @tus/server and ≥ 0.9× the limit (${formatSize(size)})`,
        measured: `${ratio.toFixed(2)}× bare (${tus.mbPerSecond.toFixed(1)} vs ${bare.mbPerSecond.toFixed(1)} MB/s); ${tus.ratioToLimit.toFixed(2)}× the limit`,
        met: ratio >= 1.3 && tus.ratioToLimit >= 0.9,
      });
    }
    const unhashed = find('freight tus, UPLOAD_SHA256=false', size);
    if (unhashed && bare) {
      const ratio = unhashed.mbPerSecond / bare.mbPerSecond;
      targets.push({
        target: `freight tus with UPLOAD_SHA256=false ≥ 1.5× bare @tus/server (${formatSize(size)})`,
        measured: `${ratio.toFixed(2)}× (${unhashed.mbPerSecond.toFixed(1)} vs ${bare.mbPerSecond.toFixed(1)} MB/s)`,
        met: ratio >= 1.5,
      });
    }
    if (tus && direct && tus.serverCpuPerGiB && direct.serverCpuPerGiB !== null) {
      const share = direct.serverCpuPerGiB / tus.serverCpuPerGiB;
      targets.push({
        target: `freight direct server CPU per GiB ≤ 1 % of the tus path (${formatSize(size)})`,
        measured: `${(share * 100).toFixed(2)} % (${direct.serverCpuPerGiB.toFixed(3)} vs ${tus.serverCpuPerGiB.toFixed(2)} s/GiB)`,
        met: share <= 0.01,
      });
    }
  }
  const freightRss = result.summaries.filter((s) => s.contender.startsWith('freight')).map((s) => s.serverPeakRss ?? 0);
  const memoryRun = result.memory?.series.find((s) => s.name === 'freight tus');
  const growth = memoryRun ? rssGrowth(memoryRun.points) : undefined;
  const peak = Math.max(...freightRss, growth?.peak ?? 0);
  // Concurrent uploads fill more part slots at once: reported beside the target, which is about one upload.
  const concurrentPeak = result.instances ? Math.max(...result.instances.runs.flatMap((run) => run.peakRss)) : 0;
  targets.push({
    target: 'server RSS under 200 MB at the defaults',
    measured:
      `peak ${(peak / MB).toFixed(0)} MB (${(peak / MiB).toFixed(0)} MiB) over every run of one upload at a time` +
      (concurrentPeak
        ? `; with ${result.instances!.uploads} concurrent uploads (two instances): ${(concurrentPeak / MiB).toFixed(0)} MiB`
        : ''),
    met: peak < 200 * MB,
  });
  if (growth && growth.growth !== null && result.memory) {
    targets.push({
      target: `server RSS flat (no growth with upload size) over a ${formatSize(result.memory.size)} upload`,
      measured: growthText(growth.growth),
      met: Math.abs(growth.growth) < 10 * MiB,
    });
  }
  const disk = Math.max(
    ...result.summaries.filter((s) => s.contender === 'freight tus').map((s) => s.peakTempDisk ?? 0),
  );
  targets.push({
    target: `temp disk within its budget (${(result.tempDiskBudget / MiB).toFixed(0)} MiB with the defaults)`,
    measured: `peak ${(disk / MiB).toFixed(0)} MiB`,
    met: disk <= result.tempDiskBudget,
  });
  const bytes = bytesToS3Target(result);
  if (bytes) targets.push(bytes);
  if (result.micro.headFreight) {
    targets.push({
      target: 'HEAD ≥ 5,000 requests/s (32 concurrent clients, state in Postgres)',
      measured: `${result.micro.headFreight.requestsPerSecond} requests/s (bare @tus/server: ${result.micro.headBare?.requestsPerSecond ?? '—'})${headCpu(result.micro.headFreight)}`,
      met: result.micro.headFreight.requestsPerSecond >= 5000,
    });
  }
  const load = result.load;
  const freightLoad = load?.rows.find((row) => row.server === 'freight');
  const bareLoad = load?.rows.find((row) => row.server.startsWith('bare'));
  if (load && freightLoad && bareLoad) {
    const ratio = freightLoad.uploadsPerSecond / bareLoad.uploadsPerSecond;
    targets.push({
      target: `${load.options.count} uploads of ${formatSize(load.options.size)}, ${load.options.concurrency} at a time, ${load.options.users} users: ≥ 1.2× bare's uploads/s, none failed, RSS < 200 MB`,
      measured: `${ratio.toFixed(2)}× (${freightLoad.uploadsPerSecond} vs ${bareLoad.uploadsPerSecond} uploads/s), p99 ${freightLoad.p99Ms} ms, ${freightLoad.failed} failed, peak RSS ${((freightLoad.peakRss ?? 0) / MiB).toFixed(0)} MiB, ${freightLoad.peakDbConnections ?? '—'} PostgreSQL connections at most`,
      met: ratio >= 1.2 && freightLoad.failed === 0 && (freightLoad.peakRss ?? 0) < 200 * MB,
    });
  }
  if (result.micro.sign10k) {
    targets.push({
      target: '10,000 part URLs signed in under 1 s',
      measured: `${result.micro.sign10k.signMs.toFixed(0)} ms (10 requests of 1,000, through the API)`,
      met: result.micro.sign10k.signMs < 1000,
    });
  }
  return targets;
}

/** What a PATCH may add to the bytes sent to S3: the staged tail it reads back and sends again, under 5 MiB. */
const TAIL_BOUND = 5 * MiB;
/** HTTP headers and the requests that stage and join parts, against the bytes: well under 1 %. */
const HTTP_OVERHEAD = 0.01;

/**
 * The tus store sends each byte to S3 once, plus the staged tail (< 5 MiB) a PATCH re-sends: Freight's bytes to S3,
 * measured by a counting relay, stay under 1.01 × the bytes uploaded + 5 MiB per PATCH, at every chunk size and in
 * the soak.
 */
function bytesToS3Target(result: BenchResult): Target | undefined {
  const checks: Array<{ what: string; perByte: number; bound: number }> = [];
  for (const s of result.summaries) {
    if (!s.contender.startsWith('freight') || s.s3SentPerByte === null) continue;
    const patches = s.requests - 1;
    checks.push({
      what: `${s.contender} (${formatSize(s.size)})`,
      perByte: s.s3SentPerByte,
      bound: 1 + HTTP_OVERHEAD + (patches * TAIL_BOUND) / s.size,
    });
  }
  for (const [i, upload] of (result.soak?.uploads ?? []).entries()) {
    checks.push({
      what: `soak upload ${i + 1}`,
      perByte: upload.toS3 / upload.size,
      bound: 1 + HTTP_OVERHEAD + (upload.patches * TAIL_BOUND) / upload.size,
    });
  }
  if (checks.length === 0) return undefined;
  const worst = checks.reduce((a, b) => (b.perByte / b.bound > a.perByte / a.bound ? b : a));
  return {
    target:
      'freight tus bytes to S3 ≤ 1.01 × the bytes uploaded + 5 MiB per PATCH (counting relay; every chunked row and the soak)',
    measured: `closest: ${worst.what} at ${worst.perByte.toFixed(3)} bytes per byte (bound ${worst.bound.toFixed(3)}); ${checks.length} checked`,
    met: checks.every((check) => check.perByte <= check.bound),
  };
}

/** What hashing costs and what parallelUploads gains, from the rows of the largest size. */
function integrityParagraph(result: BenchResult): string[] {
  const size = Math.max(...result.sizes);
  const row = (contender: string) => result.summaries.find((s) => s.contender === contender && s.size === size);
  const hashed = row('freight tus');
  const unhashed = row('freight tus, UPLOAD_SHA256=false');
  const parallel = row('freight tus, parallelUploads 4');
  const lines: string[] = [];
  if (hashed?.serverCpuPerGiB != null && unhashed?.serverCpuPerGiB != null) {
    lines.push(
      `**The running SHA-256** (${formatSize(size)}): ${hashed.serverCpuPerGiB.toFixed(2)} s of server CPU per GiB with it, ` +
        `${unhashed.serverCpuPerGiB.toFixed(2)} without (${(hashed.serverCpuPerGiB - unhashed.serverCpuPerGiB).toFixed(2)} s/GiB for the digest); ` +
        `${hashed.mbPerSecond.toFixed(1)} against ${unhashed.mbPerSecond.toFixed(1)} MB/s.`,
      '',
    );
  }
  if (hashed && parallel) {
    lines.push(
      `**parallelUploads: 4 against 1** (${formatSize(size)}): ${parallel.mbPerSecond.toFixed(1)} against ${hashed.mbPerSecond.toFixed(1)} MB/s ` +
        `(${(parallel.mbPerSecond / hashed.mbPerSecond).toFixed(2)}×), until the final upload is completed (its digest read back from S3 included).`,
      '',
    );
  }
  return lines;
}

/** The page; `plots` names the SVGs written next to the JSON record (in bench/results/). */
export function benchmarksPage(
  result: BenchResult,
  targets: Target[],
  plots: { memory?: string; soak?: string },
): string {
  const m = result.machine;
  const lines = [
    '# Benchmarks',
    '',
    'Freight beside the alternatives, measured in one run on one machine: same data, same S3 gateway (Ceph RGW on',
    'loopback), same PostgreSQL. Contenders alternate (A B C D A B C D …) and each figure is the median of the rounds.',
    '',
    '- **limit**: `@aws-sdk/lib-storage` uploading straight to the gateway from Node (16 MiB parts, 4 at a time): what the',
    '  machine and the gateway allow without any server in between.',
    '- **bare @tus/server**: `@tus/server` + `@tus/s3-store` with default options on plain `node:http`, what a user would',
    '  run instead (`bench/bare-server.ts`), with tus-js-client.',
    '- **freight tus**: Freight as `npm start` runs it, with its defaults, on Postgres and S3, with tus-js-client.',
    "- **freight direct**: the presigned multipart path with the project's client (4 parts in flight, MD5 per part), on",
    "  a Freight process of its own: its server CPU is the direct path's work, not the garbage collector's clean-up",
    '  after the tus rows (V8 collects when a process falls quiet after a burst, which lands in the next row).',
    '- **freight tus, UPLOAD_SHA256=false**: the same Freight without the running SHA-256 of each upload (a process of',
    '  its own): what keeping the digest costs.',
    '- **freight tus, parallelUploads 4**: tus-js-client with `parallelUploads: 4` (four partial uploads at once, then a',
    '  final one that Freight has S3 join with UploadPartCopy); timed until the final upload is completed (polled).',
    '- **…, 5 MiB PATCHes** and **…, 64 MiB PATCHes**: tus-js-client with `chunkSize` 5 MiB or 64 MiB against bare',
    '  @tus/server and against Freight, each a server process of its own whose S3_ENDPOINT is a counting relay',
    '  (`bench/counting-relay.ts`), so that the bytes each sends to S3 are measured outside it.',
    '',
    `Freight runs as \`npm start\` runs it: \`${result.freightStart}\`.`,
    '',
    'Server CPU and RSS are read from `/proc` of the server process (sampled every 100 ms), temp disk is the size of',
    "its part-buffer directory (sampled likewise), gateway CPU is that of the gateway's daemons (radosgw, OSD, monitor),",
    "requests are the HTTP requests the client made. Parts stored is the `-N` suffix of the stored object's ETag",
    '(HeadObject), whose size is checked too. Bytes to / from S3 per byte are the bytes the server sent to S3 and',
    'received from it (HTTP headers included) per byte uploaded, counted by the relay; only the chunked rows go through',
    'one, and its work (in the benchmark process) shares the machine with the rest, so compare chunked rows with each',
    'other. Largest upload is what the server can take at that PATCH size: bare @tus/server ends a part at the end of',
    'every PATCH (its parts are never fewer than its PATCHes), so 10,000 PATCHes at most; Freight plans its parts when',
    'the upload is created, whatever the PATCHes, so its `MAX_UPLOAD_SIZE`.',
    '',
    `Run of ${result.date.slice(0, 16).replace('T', ' ')} UTC, ${result.rounds} rounds, ${Math.round(result.durationSeconds / 60)} minutes:`,
    '',
    '```',
    result.command,
    '```',
    '',
    `Machine: ${m.cpus} × ${m.cpuModel}, ${m.ramGiB} GiB RAM, Linux ${m.kernel}, Node ${m.node}. The machine is shared and noisy:`,
    'compare rows of one run, not runs of different days.',
    '',
    '## Targets',
    '',
    '| target | measured | |',
    '|---|---|---|',
    ...targets.map((t) => `| ${t.target} | ${t.measured} | ${t.met ? 'met' : '**not met**'} |`),
    '',
    '## Throughput',
    '',
    summaryTable(result.summaries),
    ...boundsParagraph(result),
    ...integrityParagraph(result),
    '## Microbenchmarks',
    '',
  ];
  const micro = result.micro;
  if (micro.headFreight) {
    lines.push(
      '| what | Freight | bare @tus/server |',
      '|---|---:|---:|',
      `| HEAD (resume check), 32 concurrent clients on 32 uploads with parts stored | ${micro.headFreight.requestsPerSecond} req/s${headCpu(micro.headFreight)} | ${micro.headBare?.requestsPerSecond ?? '—'} req/s |`,
      `| creating a tus upload (POST), median / p95 | ${micro.createTusFreight?.medianMs} / ${micro.createTusFreight?.p95Ms} ms | ${micro.createTusBare?.medianMs} / ${micro.createTusBare?.p95Ms} ms |`,
      `| creating a direct upload (POST /api/multipart), median / p95 | ${micro.createDirectFreight?.medianMs} / ${micro.createDirectFreight?.p95Ms} ms | — |`,
      `| planning 10,000 parts (POST /api/multipart, 10,000 part rows) | ${micro.sign10k?.createMs.toFixed(0)} ms | — |`,
      `| signing 10,000 part URLs with MD5 (10 × POST …/sign of 1,000) | ${micro.sign10k?.signMs.toFixed(0)} ms | — |`,
      '',
    );
  }
  if (result.load) {
    lines.push(
      '## Many uploads at once',
      '',
      ...loadTable(result.load.rows, result.load.options, result.load.profile),
      '',
    );
  }
  if (result.instances) lines.push(...instancesSection(result.instances));
  if (result.memory && plots.memory) {
    lines.push(
      `## Memory over a ${formatSize(result.memory.size)} upload`,
      '',
      `Server RSS sampled every second during one tus upload of ${formatSize(result.memory.size)}:`,
      '',
      `![RSS over time](bench/results/${plots.memory})`,
      '',
      ...result.memory.series.map((s) => {
        const g = rssGrowth(s.points);
        return `- ${s.name}: peak ${(g.peak / MiB).toFixed(0)} MiB, ${growthText(g.growth)}.`;
      }),
      '',
    );
  }
  if (result.soak) lines.push(...soakSection(result.soak, plots.soak));
  if (result.staging) lines.push(...stagingSection(result.staging));
  lines.push(
    '## Reproduce',
    '',
    '`npm run bench` (root, Debian): it starts PostgreSQL if needed and its own Ceph RGW on free ports (or uses',
    '`DATABASE_URL` and `S3_ENDPOINT`/`S3_ACCESS_KEY_ID`/`S3_SECRET_ACCESS_KEY` when set), writes the data files to',
    '`bench/.work/`, and records everything in `bench/results/<date>.json`. Flags: `--size 8GiB` (repeatable or',
    'comma-separated), `--rounds N`, `--memory-size 4GiB`, `--soak-size 32GiB`, `--no-micro`, `--no-memory`,',
    '`--no-instances`, `--no-soak`, `--no-staging`, `--no-load`; `--staging` and `--load` run only their measurement. `S3_PART_SIZE`',
    'and `S3_PART_CONCURRENCY` set in its environment are passed on to Freight (and shown in the command above).',
    '',
  );
  return lines.join('\n');
}

/** Freight's server CPU per resume check, over the HEADs alone (the client shares the machine's cores). */
function headCpu(head: { serverCpuMsPerRequest?: number }): string {
  return head.serverCpuMsPerRequest === undefined
    ? ''
    : `, ${head.serverCpuMsPerRequest.toFixed(3)} ms of server CPU each`;
}
