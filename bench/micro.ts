/** Microbenchmarks: resume checks under load, creating uploads, signing part URLs. */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { cpuSeconds } from './proc.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const auth = (token: string | undefined): Record<string, string> => (token ? { Authorization: `Bearer ${token}` } : {});

export interface Latency {
  count: number;
  medianMs: number;
  p95Ms: number;
}

function latency(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { count: sorted.length, medianMs: round(at(0.5)), p95Ms: round(at(0.95)) };
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

async function createTus(url: string, token: string | undefined, length: number): Promise<string> {
  const res = await fetch(`${url}/files/`, {
    method: 'POST',
    headers: { ...TUS, ...auth(token), 'Upload-Length': String(length) },
  });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`create answered ${res.status}`);
  return res.headers.get('location')!;
}

/**
 * HEAD requests per second with `clients` concurrent clients, on uploads that have parts in S3 (so each answer
 * reflects real state: the ownership row in Postgres and the parts in S3).
 */
export async function headThroughput(
  url: string,
  token: string | undefined,
  options: { clients: number; seconds: number; uploads: number; pid?: number | undefined },
): Promise<{ requestsPerSecond: number; requests: number; errors: number; serverCpuMsPerRequest?: number }> {
  const body = randomBytes(6 * 1024 * 1024);
  const locations: string[] = [];
  for (let i = 0; i < options.uploads; i++) {
    const location = await createTus(url, token, 64 * 1024 * 1024);
    const res = await fetch(location, {
      method: 'PATCH',
      headers: { ...TUS, ...auth(token), 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body,
    });
    await res.arrayBuffer();
    locations.push(location);
  }
  // node:http with keep-alive costs the client far less CPU than fetch, which matters with 2 cores to share.
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.clients });
  const head = (location: string) =>
    new Promise<boolean>((resolve, reject) => {
      const req = http.request(location, { method: 'HEAD', agent, headers: { ...TUS, ...auth(token) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 && res.headers['upload-offset'] === String(body.length)));
      });
      req.on('error', reject);
      req.end();
    });
  let requests = 0;
  let errors = 0;
  const deadline = Date.now() + options.seconds * 1000;
  // The server's CPU over the HEADs alone (not the uploads made above, with their digests and S3 writes).
  const cpuBefore = options.pid === undefined ? undefined : cpuSeconds(options.pid);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: options.clients }, async (_, client) => {
      for (let i = client; Date.now() < deadline; i += options.clients) {
        if (await head(locations[i % locations.length]!)) requests++;
        else errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpuMs = cpuBefore === undefined ? undefined : (cpuSeconds(options.pid!) - cpuBefore) * 1000;
  agent.destroy();
  return {
    requestsPerSecond: Math.round(requests / elapsed),
    requests,
    errors,
    ...(cpuMs === undefined ? {} : { serverCpuMsPerRequest: round(cpuMs / Math.max(1, requests), 3) }),
  };
}

export async function tusCreateLatency(url: string, token: string | undefined, count: number): Promise<Latency> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await createTus(url, token, 1024 * 1024 * 1024);
    samples.push(performance.now() - started);
  }
  return latency(samples);
}

async function postJson(url: string, token: string, body: unknown): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url}: ${res.status} ${text}`);
  return JSON.parse(text);
}

export async function directCreateLatency(url: string, token: string, count: number): Promise<Latency> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await postJson(`${url}/api/multipart`, token, { filename: 'latency.bin', size: 1024 * 1024 * 1024, parts: [] });
    samples.push(performance.now() - started);
  }
  return latency(samples);
}

/** One upload planned as 10,000 parts of 5 MiB, then every part URL signed (with an MD5 each) through the API. */
export async function signTenThousand(
  url: string,
  token: string,
): Promise<{ createMs: number; signMs: number; urls: number }> {
  const partSize = 5 * 1024 * 1024;
  let started = performance.now();
  const created = (await postJson(`${url}/api/multipart`, token, {
    filename: 'ten-thousand.bin',
    size: 10_000 * partSize,
    partSize,
    parts: [],
  })) as { id: string };
  const createMs = performance.now() - started;
  const md5 = randomBytes(16).toString('base64');
  let urls = 0;
  started = performance.now();
  for (let batch = 0; batch < 10; batch++) {
    const parts = Array.from({ length: 1000 }, (_, i) => ({ partNumber: batch * 1000 + i + 1, md5 }));
    const signed = (await postJson(`${url}/api/multipart/${created.id}/sign`, token, { parts })) as {
      parts: unknown[];
    };
    urls += signed.parts.length;
  }
  return { createMs: round(createMs), signMs: round(performance.now() - started), urls };
}
