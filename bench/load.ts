/**
 * The load row: many small uploads at once, as a busy application sends them. `count` uploads of `size` bytes,
 * `concurrency` at a time, spread over `users` users, each with tus-js-client as most users run it (a POST, then
 * the whole file in one PATCH). Measured: uploads per second, each upload's time (p50, p99), failures, the
 * server's peak RSS and the PostgreSQL connections open meanwhile. For Freight also a profile from its own
 * /metrics: what one upload costs in database calls, S3 calls and lock waits, and where a PATCH's time goes.
 */
import postgres from 'postgres';
import { Upload as TusUpload } from 'tus-js-client';
import { Authenticator } from '../src/auth/authenticator.js';
import { log } from './log.js';
import { sample } from './proc.js';
import { BENCH_SECRET, type ServerProcess } from './servers.js';

export interface LoadOptions {
  count: number;
  size: number;
  concurrency: number;
  users: number;
}

export interface LoadResult {
  server: string;
  uploads: number;
  failed: number;
  seconds: number;
  uploadsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  peakRss: number | null;
  /** The most connections the server's process had open to the database at once while the uploads ran. */
  peakDbConnections: number | null;
  /** The first failures, for the log. */
  failures: string[];
}

/** What one upload cost Freight, from the deltas of its /metrics over the load run. */
export interface LoadProfile {
  uploads: number;
  /** HTTP requests per upload and their mean time, by method. */
  requests: Record<string, { perUpload: number; meanMs: number }>;
  /** Database calls per upload (repository methods) and their mean time. */
  dbCalls: Record<string, { perUpload: number; meanMs: number }>;
  /** S3 calls per upload and their mean time, by operation. */
  s3Calls: Record<string, { perUpload: number; meanMs: number }>;
  /** Lock acquisitions per upload and their mean wait (each is one query on the lock session, its release another). */
  lockWaits: { perUpload: number; meanMs: number };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!;
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(`${url}/metrics`);
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

/** A histogram's count and sum by one label, as the difference between two scrapes. */
function histogramDelta(before: Sample[], after: Sample[], name: string, label: string) {
  const totals = (samples: Sample[], suffix: string) => {
    const out = new Map<string, number>();
    for (const s of samples) {
      if (s.name !== `${name}${suffix}`) continue;
      const key = s.labels[label] ?? '';
      out.set(key, (out.get(key) ?? 0) + s.value);
    }
    return out;
  };
  const [count0, count1, sum0, sum1] = [
    totals(before, '_count'),
    totals(after, '_count'),
    totals(before, '_sum'),
    totals(after, '_sum'),
  ];
  const result = new Map<string, { count: number; seconds: number }>();
  for (const [key, count] of count1) {
    const delta = count - (count0.get(key) ?? 0);
    if (delta > 0) result.set(key, { count: delta, seconds: (sum1.get(key) ?? 0) - (sum0.get(key) ?? 0) });
  }
  return result;
}

function perUpload(delta: Map<string, { count: number; seconds: number }>, uploads: number) {
  return Object.fromEntries(
    [...delta.entries()]
      .sort((a, b) => b[1].count - a[1].count)
      .map(([key, { count, seconds }]) => [
        key,
        { perUpload: round(count / uploads), meanMs: round((seconds / count) * 1000) },
      ]),
  );
}

const round = (value: number) => Math.round(value * 100) / 100;

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * Polls the connections `server` has open to the database (by their application_name, the process's name; other
 * benchmark processes share the database) while `running`; returns the most seen.
 */
function connectionSampler(databaseUrl: string | undefined, server: ServerProcess) {
  if (!databaseUrl) return { stop: async () => null };
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const [row] = await sql<{ open: number }[]>`
        select count(*)::int as open from pg_stat_activity
        where datname = current_database() and application_name = ${server.name}`;
      peak = Math.max(peak, row?.open ?? 0);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    stop: async (): Promise<number | null> => {
      running = false;
      await loop;
      await sql.end();
      return peak;
    },
  };
}

function oneUpload(url: string, token: string | undefined, data: Buffer, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const upload = new TusUpload(data, {
      endpoint: `${url}/files/`,
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      metadata: { filename: name, filetype: 'application/octet-stream' },
      retryDelays: [],
      storeFingerprintForResuming: false,
      onSuccess: () => resolve(),
      onError: reject,
    });
    upload.start();
  });
}

/**
 * Runs the load against `server` (`databaseUrl`: the database where its connections are counted). Freight gets a token
 * per user; the bare server takes none.
 */
export async function runLoad(
  server: ServerProcess,
  options: LoadOptions & { authenticated: boolean; databaseUrl?: string | undefined },
): Promise<LoadResult> {
  const authenticator = await Authenticator.create({ mode: 'jwt', secret: BENCH_SECRET });
  const tokens = options.authenticated
    ? await Promise.all(Array.from({ length: options.users }, (_, i) => authenticator.issue(`load-${i}`, 3600)))
    : [];
  const data = Buffer.alloc(options.size, 7);
  const latencies: number[] = [];
  const failures: string[] = [];
  let next = 0;
  const rss = sample(server.pid, undefined, 100);
  const connections = connectionSampler(options.databaseUrl, server);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      for (let i = next++; i < options.count; i = next++) {
        const began = performance.now();
        try {
          await oneUpload(server.url, tokens[i % options.users], data, `load-${i}.bin`);
          latencies.push(performance.now() - began);
        } catch (error) {
          failures.push(error instanceof Error ? error.message.slice(0, 300) : String(error));
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const samples = await rss.stop();
  const peakDbConnections = await connections.stop();
  latencies.sort((a, b) => a - b);
  const result: LoadResult = {
    server: server.name,
    uploads: latencies.length,
    failed: failures.length,
    seconds: round(seconds),
    uploadsPerSecond: round(latencies.length / seconds),
    p50Ms: Math.round(quantile(latencies, 0.5)),
    p99Ms: Math.round(quantile(latencies, 0.99)),
    peakRss: samples.peakRss,
    peakDbConnections,
    failures: failures.slice(0, 5),
  };
  log(
    `load on ${server.name}: ${result.uploadsPerSecond} uploads/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ${result.failed} failed`,
  );
  return result;
}

/** runLoad on Freight, with the profile its /metrics give of the same run. */
export async function profiledLoad(
  server: ServerProcess,
  options: LoadOptions & { databaseUrl: string },
): Promise<{ result: LoadResult; profile: LoadProfile }> {
  const before = await scrape(server.url);
  const result = await runLoad(server, { ...options, authenticated: true });
  const after = await scrape(server.url);
  const uploads = Math.max(1, result.uploads);
  const wait = histogramDelta(before, after, 'freight_lock_wait_seconds', 'outcome');
  const waits = [...wait.values()].reduce(
    (sum, w) => ({ count: sum.count + w.count, seconds: sum.seconds + w.seconds }),
    {
      count: 0,
      seconds: 0,
    },
  );
  return {
    result,
    profile: {
      uploads,
      requests: perUpload(histogramDelta(before, after, 'freight_http_request_duration_seconds', 'method'), uploads),
      dbCalls: perUpload(histogramDelta(before, after, 'freight_db_query_duration_seconds', 'query'), uploads),
      s3Calls: perUpload(histogramDelta(before, after, 'freight_s3_request_duration_seconds', 'operation'), uploads),
      lockWaits: {
        perUpload: round(waits.count / uploads),
        meanMs: waits.count ? round((waits.seconds / waits.count) * 1000) : 0,
      },
    },
  };
}

/** The load rows and the profile, as Markdown. */
export function loadTable(rows: LoadResult[], options: LoadOptions, profile?: LoadProfile): string[] {
  const mib = (bytes: number | null) => (bytes === null ? '–' : `${Math.round(bytes / 1024 / 1024)} MiB`);
  const bare = rows.find((row) => row.server.startsWith('bare'));
  const lines = [
    `${options.count} uploads of ${options.size / 1024 / 1024} MiB, ${options.concurrency} at a time, ${options.users} users, tus-js-client (POST, then one PATCH):`,
    '',
    '| server | uploads/s | × bare | p50 | p99 | failed | peak RSS | PostgreSQL connections (peak) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (row) =>
        `| ${row.server} | ${row.uploadsPerSecond} | ${bare ? (row.uploadsPerSecond / bare.uploadsPerSecond).toFixed(2) : '–'} | ${row.p50Ms} ms | ${row.p99Ms} ms | ${row.failed} | ${mib(row.peakRss)} | ${row.peakDbConnections ?? '–'} |`,
    ),
  ];
  if (profile) {
    const list = (calls: Record<string, { perUpload: number; meanMs: number }>) =>
      Object.entries(calls)
        .map(([name, c]) => `${name} ${c.perUpload} × ${c.meanMs} ms`)
        .join(', ') || 'none';
    lines.push(
      '',
      `Where one upload's time goes in Freight (from its /metrics over the same run, per upload; times are means and overlap):`,
      '',
      `- HTTP requests: ${list(profile.requests)}`,
      `- database calls: ${list(profile.dbCalls)}`,
      `- lock acquisitions: ${profile.lockWaits.perUpload} × ${profile.lockWaits.meanMs} ms waited (each one query on the lock session, and one more to release it)`,
      `- S3 calls: ${list(profile.s3Calls)}`,
    );
  }
  return lines;
}
