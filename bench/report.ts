/** The benchmark's outputs: the JSON record, the markdown page and the RSS plot. */

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
}

export const MB = 1e6;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

const maxOrNull = (values: Array<number | null>): number | null => {
  const known = values.filter((value): value is number => value !== null);
  return known.length ? Math.max(...known) : null;
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
      });
    }
  }
  return out;
}

export function formatSize(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB) return `${Math.round(bytes / MiB)} MiB`;
  return `${Math.round(bytes / 1024)} KiB`;
}

const num = (value: number | null, digits: number, unit = '') => (value === null || Number.isNaN(value) ? '—' : `${value.toFixed(digits)}${unit}`);

export function summaryTable(summaries: Summary[]): string {
  const lines: string[] = [];
  for (const size of [...new Set(summaries.map((s) => s.size))]) {
    lines.push(`**${formatSize(size)}**`, '');
    lines.push('| contender | MB/s (median) | × limit | server CPU s/GiB | gateway CPU s/GiB | server peak RSS | peak temp disk | requests |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of summaries.filter((summary) => summary.size === size)) {
      lines.push(
        `| ${s.contender} | ${s.mbPerSecond.toFixed(1)} | ${num(s.ratioToLimit, 2, '×')} | ${num(s.serverCpuPerGiB, 3)} | ${num(s.gatewayCpuPerGiB, 2)} | ${num(s.serverPeakRss === null ? null : s.serverPeakRss / MiB, 0, ' MiB')} | ${num(s.peakTempDisk === null ? null : s.peakTempDisk / MiB, 0, ' MiB')} | ${s.requests} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** A small line chart of RSS over time, one line per series. */
export function rssSvg(series: Array<{ name: string; color: string; points: Array<[number, number]> }>, title: string): string {
  const width = 720;
  const height = 360;
  const pad = { left: 60, right: 20, top: 40, bottom: 50 };
  const maxT = Math.max(1, ...series.flatMap((s) => s.points.map(([t]) => t)));
  const maxMiB = Math.max(50, ...series.flatMap((s) => s.points.map(([, rss]) => rss / MiB))) * 1.15;
  const x = (t: number) => pad.left + (t / maxT) * (width - pad.left - pad.right);
  const y = (mib: number) => height - pad.bottom - (mib / maxMiB) * (height - pad.top - pad.bottom);
  const ticks = (max: number, count: number) => Array.from({ length: count + 1 }, (_, i) => (max / count) * i);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${title}</text>`,
  ];
  for (const value of ticks(maxMiB, 5)) {
    parts.push(`<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(value)}" y2="${y(value)}" stroke="#ddd"/>`);
    parts.push(`<text x="${pad.left - 6}" y="${y(value) + 4}" text-anchor="end">${value.toFixed(0)}</text>`);
  }
  for (const value of ticks(maxT, 6)) {
    parts.push(`<text x="${x(value)}" y="${height - pad.bottom + 18}" text-anchor="middle">${value.toFixed(0)}</text>`);
  }
  parts.push(`<text x="${width / 2}" y="${height - 12}" text-anchor="middle">seconds</text>`);
  parts.push(`<text x="16" y="${height / 2}" text-anchor="middle" transform="rotate(-90 16 ${height / 2})">RSS (MiB)</text>`);
  series.forEach((s, i) => {
    const path = s.points.map(([t, rss], j) => `${j ? 'L' : 'M'}${x(t).toFixed(1)},${y(rss / MiB).toFixed(1)}`).join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    parts.push(`<rect x="${pad.left + 10}" y="${pad.top + 4 + i * 18}" width="12" height="12" fill="${s.color}"/>`);
    parts.push(`<text x="${pad.left + 28}" y="${pad.top + 14 + i * 18}">${s.name}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

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
    headFreight?: { requestsPerSecond: number };
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

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);

/** RSS growth over a long upload: the mean of the last quarter of the samples against the second quarter. */
/** Samples (one a second) below which an upload is too short to tell growth from noise. */
const MIN_GROWTH_SAMPLES = 8;

/** Peak RSS, and the change from the second to the last quarter of the upload (null if too short to tell). */
export function rssGrowth(points: Array<[number, number]>): { peak: number; growth: number | null } {
  const rss = points.map(([, value]) => value);
  const quarter = Math.floor(rss.length / 4);
  return {
    peak: Math.max(...rss),
    growth: rss.length < MIN_GROWTH_SAMPLES ? null : mean(rss.slice(-quarter)) - mean(rss.slice(quarter, 2 * quarter)),
  };
}

const growthText = (growth: number | null) =>
  growth === null
    ? `too short to tell (under ${MIN_GROWTH_SAMPLES} samples)`
    : `${growth >= 0 ? '+' : ''}${(growth / MiB).toFixed(1)} MiB from the second to the last quarter of the upload`;

export function evaluateTargets(result: BenchResult): Target[] {
  const targets: Target[] = [];
  const find = (contender: string, size: number) => result.summaries.find((s) => s.contender === contender && s.size === size);
  for (const size of result.sizes) {
    const tus = find('freight tus', size);
    const bare = find('bare @tus/server', size);
    const direct = find('freight direct', size);
    if (tus && bare) {
      const ratio = tus.mbPerSecond / bare.mbPerSecond;
      targets.push({
        target: `freight tus ≥ 1.0× bare @tus/server throughput (${formatSize(size)})`,
        measured: `${ratio.toFixed(2)}× (${tus.mbPerSecond.toFixed(1)} vs ${bare.mbPerSecond.toFixed(1)} MB/s); ${tus.ratioToLimit.toFixed(2)}× the limit`,
        met: ratio >= 1.0,
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
  const freightRss = result.summaries
    .filter((s) => s.contender.startsWith('freight'))
    .map((s) => s.serverPeakRss ?? 0);
  const memoryRun = result.memory?.series.find((s) => s.name === 'freight tus');
  const growth = memoryRun ? rssGrowth(memoryRun.points) : undefined;
  const peak = Math.max(...freightRss, growth?.peak ?? 0);
  targets.push({
    target: 'server RSS under 150 MB at the defaults',
    measured: `peak ${(peak / MB).toFixed(0)} MB (${(peak / MiB).toFixed(0)} MiB) over every run`,
    met: peak < 150 * MB,
  });
  if (growth && growth.growth !== null && result.memory) {
    targets.push({
      target: `server RSS flat (no growth with upload size) over a ${formatSize(result.memory.size)} upload`,
      measured: growthText(growth.growth),
      met: Math.abs(growth.growth) < 10 * MiB,
    });
  }
  const disk = Math.max(...result.summaries.filter((s) => s.contender === 'freight tus').map((s) => s.peakTempDisk ?? 0));
  targets.push({
    target: `temp disk within its budget (${(result.tempDiskBudget / MiB).toFixed(0)} MiB with the defaults)`,
    measured: `peak ${(disk / MiB).toFixed(0)} MiB`,
    met: disk <= result.tempDiskBudget,
  });
  if (result.micro.headFreight) {
    targets.push({
      target: 'HEAD ≥ 2,000 requests/s (32 concurrent clients, state in Postgres)',
      measured: `${result.micro.headFreight.requestsPerSecond} requests/s (bare @tus/server: ${result.micro.headBare?.requestsPerSecond ?? '—'})`,
      met: result.micro.headFreight.requestsPerSecond >= 2000,
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

export function benchmarksPage(result: BenchResult, targets: Target[], svgName: string | undefined): string {
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
    '- **freight direct**: the presigned multipart path with the project\'s client (4 parts in flight, MD5 per part).',
    '- **freight tus parallel** (tus-js-client `parallelUploads`): not yet possible, as it needs the tus concatenation',
    '  extension, which is not implemented.',
    '',
    `Freight runs as \`npm start\` runs it: \`${result.freightStart}\`.`,
    '',
    'Server CPU and RSS are read from `/proc` of the server process (sampled every 100 ms), temp disk is the size of',
    'its part-buffer directory (sampled likewise), gateway CPU is that of the gateway\'s daemons (radosgw, OSD, monitor),',
    'requests are the HTTP requests the client made.',
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
    '## Microbenchmarks',
    '',
  ];
  const micro = result.micro;
  if (micro.headFreight) {
    lines.push(
      '| what | Freight | bare @tus/server |',
      '|---|---:|---:|',
      `| HEAD (resume check), 32 concurrent clients on 32 uploads with parts stored | ${micro.headFreight.requestsPerSecond} req/s | ${micro.headBare?.requestsPerSecond ?? '—'} req/s |`,
      `| creating a tus upload (POST), median / p95 | ${micro.createTusFreight?.medianMs} / ${micro.createTusFreight?.p95Ms} ms | ${micro.createTusBare?.medianMs} / ${micro.createTusBare?.p95Ms} ms |`,
      `| creating a direct upload (POST /api/multipart), median / p95 | ${micro.createDirectFreight?.medianMs} / ${micro.createDirectFreight?.p95Ms} ms | — |`,
      `| planning 10,000 parts (POST /api/multipart, 10,000 part rows) | ${micro.sign10k?.createMs.toFixed(0)} ms | — |`,
      `| signing 10,000 part URLs with MD5 (10 × POST …/sign of 1,000) | ${micro.sign10k?.signMs.toFixed(0)} ms | — |`,
      '',
    );
  }
  if (result.memory && svgName) {
    lines.push(
      `## Memory over a ${formatSize(result.memory.size)} upload`,
      '',
      `Server RSS sampled every second during one tus upload of ${formatSize(result.memory.size)}:`,
      '',
      `![RSS over time](bench/results/${svgName})`,
      '',
      ...result.memory.series.map((s) => {
        const g = rssGrowth(s.points);
        return `- ${s.name}: peak ${(g.peak / MiB).toFixed(0)} MiB, ${growthText(g.growth)}.`;
      }),
      '',
    );
  }
  lines.push(
    '## Reproduce',
    '',
    '`npm run bench` (root, Debian): it starts PostgreSQL if needed and its own Ceph RGW on free ports (or uses',
    '`DATABASE_URL` and `S3_ENDPOINT`/`S3_ACCESS_KEY_ID`/`S3_SECRET_ACCESS_KEY` when set), writes the data files to',
    '`bench/.work/`, and records everything in `bench/results/<date>.json`. Flags: `--size 8GiB` (repeatable or',
    'comma-separated), `--rounds N`, `--memory-size 4GiB`, `--no-micro`, `--no-memory`. `S3_PART_SIZE` and',
    '`S3_PART_CONCURRENCY` set in its environment are passed on to Freight (and shown in the command above).',
    '',
  );
  return lines.join('\n');
}
