/**
 * Two instances: N concurrent tus uploads spread over two Freight processes that share the database, the bucket and
 * DATA_DIR, against the same N uploads on one of them, alternating (one, two, one, two …). Each upload stays on the
 * instance that created it (tus-js-client follows the Location it was given). With the client, both servers and
 * the gateway on one machine, a second instance adds no CPU: the row shows that uploads through both work, and
 * what the second process costs.
 */
import { createReadStream } from 'node:fs';
import type { S3Settings } from '../scripts/services.js';
import { deleteObject, storedObject, tusUpload } from './contenders.js';
import { collectGarbage, gatewayCpu } from './gateway.js';
import { log } from './log.js';
import { cpuSeconds, sample } from './proc.js';
import { GiB, MB, MiB, formatSize, median } from './numbers.js';
import type { ServerProcess } from './servers.js';

export type InstancesSetup = 'one instance' | 'two instances';

export interface InstancesRun {
  setup: InstancesSetup;
  round: number;
  seconds: number;
  /** All uploads' bytes over the time from the first request to the last answer. */
  mbPerSecond: number;
  /** Both processes together. */
  serverCpuSeconds: number;
  gatewayCpuSeconds: number | null;
  /** Each process's peak RSS, in the order the instances were given. */
  peakRss: number[];
  /** The shared DATA_DIR's temp directories, all processes together. */
  peakTempDisk: number;
  /** Uploads per instance, in the same order. */
  uploadsPerInstance: number[];
  /** Every object has the size that was sent. */
  sizesOk: boolean;
}

export interface InstancesResult {
  uploads: number;
  size: number;
  runs: InstancesRun[];
}

export async function measureInstances(options: {
  instances: [ServerProcess, ServerProcess];
  token: string;
  file: string;
  size: number;
  uploads: number;
  rounds: number;
  s3: S3Settings;
  bucket: string;
}): Promise<InstancesResult> {
  const { instances, token, file, size, uploads, s3, bucket } = options;
  const runs: InstancesRun[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const setup of ['one instance', 'two instances'] as const) {
      const targets = Array.from({ length: uploads }, (_, i) => instances[setup === 'one instance' ? 0 : i % 2]!);
      const cpu0 = instances.map((server) => cpuSeconds(server.pid));
      const gateway0 = await gatewayCpu(s3);
      const samplers = instances.map((server, i) => sample(server.pid, i === 0 ? server.tempDir : undefined, 100));
      const started = performance.now();
      const keys = await Promise.all(
        targets.map(
          async (server) => (await tusUpload({ url: server.url, token, input: createReadStream(file), size })).key,
        ),
      );
      const seconds = (performance.now() - started) / 1000;
      const samples = await Promise.all(samplers.map((sampler) => sampler.stop()));
      const gateway1 = await gatewayCpu(s3);
      let sizesOk = true;
      for (const key of keys) {
        const stored = await storedObject(s3, bucket, key);
        if (stored.size !== size) {
          sizesOk = false;
          log(`two instances: object ${key} holds ${stored.size} bytes, not ${size}`);
        }
        await deleteObject(s3, bucket, key);
      }
      const run: InstancesRun = {
        setup,
        round,
        seconds,
        mbPerSecond: (uploads * size) / MB / seconds,
        serverCpuSeconds: instances.reduce((sum, server, i) => sum + cpuSeconds(server.pid) - cpu0[i]!, 0),
        gatewayCpuSeconds: gateway0 === null || gateway1 === null ? null : gateway1 - gateway0,
        peakRss: samples.map((s) => s.peakRss),
        peakTempDisk: samples[0]!.peakDisk,
        uploadsPerInstance: instances.map((server) => targets.filter((target) => target === server).length),
        sizesOk,
      };
      runs.push(run);
      log(`${uploads} × ${formatSize(size)} on ${setup} round ${round}: ${run.mbPerSecond.toFixed(1)} MB/s`);
    }
    await collectGarbage(s3);
  }
  return { uploads: options.uploads, size: options.size, runs };
}

export function instancesSection(result: InstancesResult): string[] {
  const lines = [
    '## Two instances',
    '',
    `${result.uploads} concurrent tus uploads of ${formatSize(result.size)} (tus-js-client, one PATCH each), on one Freight process, or`,
    'spread over two (half each) that share the database, the bucket and `DATA_DIR`; each upload stays on the instance',
    'that created it. Alternating, median of the rounds. MB/s is all bytes over the time from the first request to the',
    "last answer; server CPU is both processes together. Client, both servers and the gateway share the machine's",
    'cores, so a second instance cannot add throughput here: the row shows that both serve uploads side by side, and',
    'what the second process costs.',
    '',
    '| setup | uploads per instance | MB/s total (median) | server CPU s/GiB | gateway CPU s/GiB | peak RSS per instance | peak temp disk (all) | objects |',
    '|---|---|---:|---:|---:|---|---:|---|',
  ];
  for (const setup of ['one instance', 'two instances'] as const) {
    const runs = result.runs.filter((run) => run.setup === setup);
    if (runs.length === 0) continue;
    const gib = (result.uploads * result.size) / GiB;
    const gateway = runs.map((run) => run.gatewayCpuSeconds).filter((value): value is number => value !== null);
    const rss = runs[0]!.peakRss.map((_, i) => Math.max(...runs.map((run) => run.peakRss[i]!)));
    lines.push(
      `| ${setup} | ${runs[0]!.uploadsPerInstance.join(' + ')} | ${median(runs.map((run) => run.mbPerSecond)).toFixed(1)} | ` +
        `${(median(runs.map((run) => run.serverCpuSeconds)) / gib).toFixed(3)} | ${gateway.length ? (median(gateway) / gib).toFixed(2) : '—'} | ` +
        `${rss.map((bytes) => `${(bytes / MiB).toFixed(0)} MiB`).join(' + ')} | ${(Math.max(...runs.map((run) => run.peakTempDisk)) / MiB).toFixed(0)} MiB | ` +
        `${runs.every((run) => run.sizesOk) ? 'sizes right' : '**wrong size**'} |`,
    );
  }
  lines.push('');
  return lines;
}
