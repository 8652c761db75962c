/**
 * The soak: many GiB through Freight's tus path in 64 MiB PATCHes (tus-js-client with its default retries, from
 * generated data, so nothing that large is written to disk), with S3_MAX_PARTS=100 so that parts are planned
 * without regard to PATCHes and are joined from the ends and starts of PATCHes inside S3. A sequence of uploads of at most 8 GiB, each checked (its size,
 * its parts, and its bytes around every part and PATCH boundary read back), deleted and collected by the gateway
 * before the next, so that the gateway's disk holds them. Freight reaches S3 through a counting relay; its RSS and
 * temp disk are sampled every second over the whole soak.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { s3ClientFor, type S3Settings } from '../scripts/services.js';
import { loadConfig } from '../src/config/index.js';
import { SEGMENT_FLOOR } from '../src/tus/s3/layout.js';
import { deleteObject, storedObject, tusUpload } from './contenders.js';
import { startCountingRelay } from './counting-relay.js';
import { DataPattern } from './data.js';
import { collectGarbage } from './gateway.js';
import { log } from './log.js';
import { GiB, MB, MiB, formatSize } from './numbers.js';
import { sample, type Samples } from './proc.js';
import { growthText, rssGrowth } from './rss.js';
import { startFreightProcess, tunablesSet } from './servers.js';

const CHUNK = 64 * MiB;
const UPLOAD = 8 * GiB;
/** The settings the soak runs Freight with: 100 parts at most, so that an 8 GiB upload has parts of 82 MiB, larger than a PATCH. */
const SOAK_ENV = {
  S3_MAX_PARTS: '100',
  // The most 100 parts of 5 GiB hold (the configuration refuses a MAX_UPLOAD_SIZE they cannot).
  MAX_UPLOAD_SIZE: '500GiB',
};
/** Bytes read back either side of each boundary. */
const AROUND = 64 * 1024;

export interface SoakUpload {
  size: number;
  seconds: number;
  mbPerSecond: number;
  patches: number;
  /** The failures tus-js-client retried ("503: <the answer>"); each one is a defect or an outage to look into. */
  retried: string[];
  /** Planned by Freight (GET /api/uploads/:id). */
  partSize: number;
  /** The object's ETag suffix. */
  parts: number;
  objectSize: number;
  /** Through the counting relay, while this upload ran. */
  toS3: number;
  fromS3: number;
  /** Ranges read back around every part and PATCH boundary, and those that differ from what was sent. */
  checkedRanges: number;
  wrongRanges: number;
}

export interface SoakResult {
  totalSize: number;
  chunkSize: number;
  settings: Record<string, string>;
  /** The whole soak: uploads, checks, deletes and the gateway's garbage collection. */
  seconds: number;
  uploads: SoakUpload[];
  /** [seconds, bytes], once a second over the whole soak. */
  rss: Array<[number, number]>;
  peakTempDisk: number;
  /** S3_PART_CONCURRENCY × the largest part + one partial part. */
  tempDiskBudget: number;
}

export async function soak(options: {
  root: string;
  workDir: string;
  s3: S3Settings;
  bucket: string;
  databaseUrl: string;
  token: string;
  totalSize: number;
}): Promise<SoakResult> {
  const { s3, bucket, token } = options;
  const relay = await startCountingRelay(s3.endpoint);
  const server = await startFreightProcess(
    options.root,
    options.workDir,
    { ...s3, endpoint: relay.url },
    bucket,
    options.databaseUrl,
    {
      name: 'freight-soak',
      env: SOAK_ENV,
    },
  );
  const pattern = new DataPattern();
  const uploads: SoakUpload[] = [];
  const started = performance.now();
  // RSS once a second for the plot; temp disk ten times a second, as in the throughput runs, not to miss a peak.
  const rssSampler = sample(server.pid, undefined, 1000);
  const diskSampler = sample(undefined, server.tempDir, 100);
  let rss: Samples;
  let disk: Samples;
  try {
    for (let sent = 0; sent < options.totalSize; ) {
      const size = Math.min(UPLOAD, options.totalSize - sent);
      relay.reset();
      const retried: string[] = [];
      const onRetry = (failure: string) => {
        retried.push(failure);
        log(`soak: a request failed, tus-js-client retries: ${failure}`);
      };
      const t0 = performance.now();
      const { key } = await tusUpload({
        url: server.url,
        token,
        input: pattern.stream(size),
        size,
        chunkSize: CHUNK,
        retries: { onRetry },
      });
      const seconds = (performance.now() - t0) / 1000;
      const counts = relay.counts();
      const partSize = await plannedPartSize(server.url, token, key);
      const stored = await storedObject(s3, bucket, key);
      const check = await checkBoundaries(s3, bucket, key, size, partSize, pattern);
      await deleteObject(s3, bucket, key);
      await collectGarbage(s3);
      const upload: SoakUpload = {
        size,
        seconds,
        mbPerSecond: size / MB / seconds,
        patches: Math.ceil(size / CHUNK),
        retried,
        partSize,
        parts: stored.parts,
        objectSize: stored.size,
        toS3: counts.toS3,
        fromS3: counts.fromS3,
        ...check,
      };
      uploads.push(upload);
      sent += size;
      log(
        `soak ${formatSize(sent)} of ${formatSize(options.totalSize)}: ${upload.mbPerSecond.toFixed(1)} MB/s, ${upload.parts} parts of ` +
          `${(partSize / MiB).toFixed(2)} MiB, ${(counts.toS3 / size).toFixed(3)} bytes to S3 per byte, ` +
          `${check.wrongRanges ? `${check.wrongRanges} WRONG` : 'all'} of ${check.checkedRanges} boundary ranges as sent` +
          (stored.size === size ? '' : `, OBJECT HOLDS ${stored.size} BYTES, NOT ${size}`) +
          (retried.length ? `, ${retried.length} REQUESTS FAILED AND RETRIED` : ''),
      );
    }
  } finally {
    rss = await rssSampler.stop();
    disk = await diskSampler.stop();
    await server.stop();
    await relay.close();
  }
  const settings = loadConfig({ AUTH_DISABLED: 'true', ...tunablesSet(), ...SOAK_ENV });
  const largestPart = Math.max(...uploads.map((upload) => upload.partSize));
  return {
    totalSize: options.totalSize,
    chunkSize: CHUNK,
    settings: { ...tunablesSet(), ...SOAK_ENV },
    seconds: (performance.now() - started) / 1000,
    uploads,
    rss: rss.rss,
    peakTempDisk: disk.peakDisk,
    // S3_PART_CONCURRENCY pieces waiting for or in their sends, and the one filling: parts, or segments of larger ones.
    tempDiskBudget: (settings.partConcurrency + 1) * Math.min(largestPart, Math.max(settings.partSize, SEGMENT_FLOOR)),
  };
}

async function plannedPartSize(url: string, token: string, id: string): Promise<number> {
  const res = await fetch(`${url}/api/uploads/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  const view = (await res.json()) as { partSize: number | null };
  if (!res.ok || view.partSize === null)
    throw new Error(`GET /api/uploads/${id}: ${res.status} ${JSON.stringify(view)}`);
  return view.partSize;
}

/** Reads back the bytes around every part boundary and every PATCH boundary, and compares them with what was sent. */
async function checkBoundaries(
  s3: S3Settings,
  bucket: string,
  key: string,
  size: number,
  partSize: number,
  pattern: DataPattern,
): Promise<{ checkedRanges: number; wrongRanges: number }> {
  const boundaries = new Set<number>([0, size]);
  for (let at = partSize; at < size; at += partSize) boundaries.add(at);
  for (let at = CHUNK; at < size; at += CHUNK) boundaries.add(at);
  const client = s3ClientFor(s3);
  let wrongRanges = 0;
  try {
    for (const at of [...boundaries].sort((a, b) => a - b)) {
      const start = Math.max(0, at - AROUND);
      const end = Math.min(size, at + AROUND);
      const res = await client.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end - 1}` }),
      );
      const got = Buffer.from(await res.Body!.transformToByteArray());
      if (!got.equals(pattern.bytes(start, end))) {
        wrongRanges++;
        log(`soak: object ${key} differs from what was sent in bytes ${start}..${end}`);
      }
    }
  } finally {
    client.destroy();
  }
  return { checkedRanges: boundaries.size, wrongRanges };
}

export function soakSection(result: SoakResult, svgName: string | undefined): string[] {
  const uploaded = result.uploads.reduce((sum, upload) => sum + upload.size, 0);
  const uploadSeconds = result.uploads.reduce((sum, upload) => sum + upload.seconds, 0);
  const toS3 = result.uploads.reduce((sum, upload) => sum + upload.toS3, 0);
  const fromS3 = result.uploads.reduce((sum, upload) => sum + upload.fromS3, 0);
  const growth = rssGrowth(result.rss);
  const settings = Object.entries(result.settings)
    .map(([name, value]) => `\`${name}=${value}\``)
    .join(', ');
  const lines = [
    `## Soak: ${formatSize(result.totalSize)} in ${formatSize(result.chunkSize)} PATCHes`,
    '',
    `${formatSize(uploaded)} through Freight's tus path (tus-js-client, \`chunkSize\` ${formatSize(result.chunkSize)}, from generated data) in`,
    `${result.uploads.length === 1 ? 'one upload' : `${result.uploads.length} uploads of at most ${formatSize(UPLOAD)}`}, Freight run with ${settings}:`,
    'parts are planned from the length (a hundredth of it), not from the PATCHes, so PATCHes end inside parts: each',
    'stages its end in S3, and the part is joined inside S3 when the next PATCHes fill it. Each upload is then',
    'checked (its size, its parts from the ETag suffix, and the bytes either side of every part and PATCH boundary read',
    'back against what was sent), deleted and collected by the gateway before the next. Freight reaches S3 through a',
    'counting relay (`bench/counting-relay.ts`): bytes to S3 include HTTP headers, bytes from S3 include the tails',
    'Freight reads back. tus-js-client retries as it does by default; every failure it retried is listed below.',
    '',
    `The whole soak took ${(result.seconds / 60).toFixed(1)} minutes (uploads ${(uploadSeconds / 60).toFixed(1)}, the rest checks, deletes and garbage collection).`,
    '',
    '| upload | MB/s | PATCHes | retried | part size | parts | object size | bytes to S3 per byte | bytes from S3 per byte | boundaries as sent |',
    '|---:|---:|---:|---:|---:|---:|---|---:|---:|---|',
    ...result.uploads.map(
      (upload, i) =>
        `| ${i + 1} | ${upload.mbPerSecond.toFixed(1)} | ${upload.patches} | ${upload.retried.length ? `**${upload.retried.length}**` : 0} | ` +
        `${(upload.partSize / MiB).toFixed(2)} MiB | ${upload.parts} | ` +
        `${upload.objectSize === upload.size ? `${formatSize(upload.size)}, right` : `**${upload.objectSize} bytes, not ${upload.size}**`} | ` +
        `${(upload.toS3 / upload.size).toFixed(3)} | ${(upload.fromS3 / upload.size).toFixed(3)} | ` +
        `${upload.wrongRanges ? `**${upload.wrongRanges} of ${upload.checkedRanges} differ**` : `all ${upload.checkedRanges}`} |`,
    ),
    '',
    `- throughput: ${(uploaded / MB / uploadSeconds).toFixed(1)} MB/s over the uploads' time`,
    `- bytes to S3 per byte received: ${(toS3 / uploaded).toFixed(3)}; from S3: ${(fromS3 / uploaded).toFixed(3)}`,
    `- server RSS: peak ${(growth.peak / MiB).toFixed(0)} MiB, ${growthText(growth.growth, 'the soak')}`,
    `- peak temp disk: ${(result.peakTempDisk / MiB).toFixed(0)} MiB (budget ${(result.tempDiskBudget / MiB).toFixed(0)} MiB: S3_PART_CONCURRENCY + 1 pieces of a part or segment)`,
    '',
  ];
  const failures = result.uploads.flatMap((upload, i) =>
    upload.retried.map((failure) => `- upload ${i + 1}: ${failure}`),
  );
  if (failures.length) lines.push('Requests that failed and were retried:', '', ...failures, '');
  if (svgName) lines.push(`![RSS over the soak](bench/results/${svgName})`, '');
  return lines;
}
