/** The gateway this run started (Ceph RGW): the CPU its daemons use, and its garbage collector. */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { S3Settings } from '../scripts/services.js';
import { log } from './log.js';
import { cpuSeconds } from './proc.js';

const run = promisify(execFile);

/** CPU seconds of the gateway's daemons, when this run started the gateway (so their pids are known). */
export async function gatewayCpu(s3: S3Settings): Promise<number | null> {
  if (!s3.rgwDir) return null;
  let total = 0;
  for (const name of ['rgw', 'osd.0', 'mon.a']) {
    const pid = Number(await readFile(path.join(s3.rgwDir, 'run', `${name}.pid`), 'utf8').catch(() => '0'));
    if (pid) total += cpuSeconds(pid);
  }
  return total;
}

/** Deleted objects are freed by the gateway's garbage collector, normally hours later: run it now. */
export async function collectGarbage(s3: S3Settings): Promise<void> {
  if (!s3.rgwDir) return;
  await run('radosgw-admin', ['gc', 'process', '--include-all'], {
    env: { ...process.env, CEPH_CONF: path.join(s3.rgwDir, 'ceph.conf') },
  }).catch((error: unknown) => log(`gc: ${String(error)}`));
}
