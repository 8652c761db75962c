/**
 * Tools for end-to-end fault tests: a PostgreSQL that can be stopped and started under a running Freight, a relay
 * that refuses or hangs (./proxy.ts), the test run's S3 gateway frozen in place, and Freight as a real process
 * (./server-process.ts) that can be killed and restarted. Nothing here registers cleanup of its own: whoever starts
 * something stops it, in a finally or afterAll.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../scripts/services.js';

export { holdingProxy, type HoldingProxy, type ProxyMode } from './proxy.js';
export { startServerProcess, type ServerProcess } from './server-process.js';

const run = promisify(execFile);

// ---------------------------------------------------------------------------------------------------------------
// A throwaway PostgreSQL cluster

export interface ThrowawayPostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust auth: no password). */
  readonly url: string;
  readonly port: number;
  /** Fast shutdown: open connections are terminated, new ones are refused (ECONNREFUSED). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** stop(), `downMs` of outage, start(). */
  restart(downMs?: number): Promise<void>;
  /** Stops it and deletes it (data, configuration and log). */
  drop(): Promise<void>;
}

/** Every cluster made here is named with this prefix, and nothing else is ever stopped or dropped. */
const CLUSTER_PREFIX = 'freight-faults-';
let clustersMade = 0;
let staleSwept = false;

function postgresVersion(): string {
  const versions = existsSync('/etc/postgresql') ? readdirSync('/etc/postgresql').filter((v) => /^\d+$/.test(v)) : [];
  const version = versions.sort((a, b) => Number(a) - Number(b)).at(-1);
  if (!version) throw new Error('throwawayPostgres: no PostgreSQL installed (/etc/postgresql is empty)');
  return version;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Drops clusters this helper made in test processes that no longer exist (a worker killed before its afterAll): they
 * would otherwise keep a postgres running and their port taken for good. Clusters of live processes are left alone.
 */
async function sweepStaleClusters(version: string): Promise<void> {
  const pattern = new RegExp(`^${CLUSTER_PREFIX}(\\d+)-\\d+$`);
  for (const name of readdirSync(`/etc/postgresql/${version}`)) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (!pid || isAlive(pid)) continue;
    await run('pg_dropcluster', ['--stop', version, name]).catch(() => {});
    await rm(`/etc/postgresql/${version}/${name}`, { recursive: true, force: true });
  }
}

/**
 * A PostgreSQL cluster of its own (the installed version, a free port, 127.0.0.1 only, trust auth), started, so that a
 * test can take the database away without touching the machine's `main` cluster or the other tests' database.
 * Takes about 3 s (create ~0.7 s; every start ~2.2 s, see start()).
 */
export async function throwawayPostgres(): Promise<ThrowawayPostgres> {
  const version = postgresVersion();
  if (!staleSwept) {
    staleSwept = true;
    await sweepStaleClusters(version);
  }
  const name = `${CLUSTER_PREFIX}${process.pid}-${++clustersMade}`;
  const port = await freePort();
  // --start-conf=manual: the machine's init scripts never start it. initdb -A trust: no passwords, and
  // pg_createcluster then leaves pg_hba.conf as initdb wrote it (trust for local and 127.0.0.1/::1).
  // fsync off and initdb --no-sync: the data is thrown away anyway.
  await run('pg_createcluster', [
    '--start-conf=manual',
    '--port',
    String(port),
    '-o',
    'fsync=off',
    version,
    name,
    '--',
    '-A',
    'trust',
    '--no-sync',
  ]);
  // Not `-o listen_addresses=127.0.0.1`: pg_createcluster takes 127.0.0.1 for a number, writes it unquoted, and
  // the server then refuses its configuration. A conf.d file (included by the Debian postgresql.conf) has it right.
  const confDir = `/etc/postgresql/${version}/${name}`;
  await writeFile(path.join(confDir, 'conf.d', 'freight-faults.conf'), "listen_addresses = '127.0.0.1'\n");

  const ctl = (action: 'start' | 'stop') =>
    // pg_ctlcluster's start returns after its own readiness probe (0.5 s, then 3 good connections 0.5 s apart),
    // so a started cluster accepts connections at once; stop -m fast ends sessions instead of waiting for them.
    run('pg_ctlcluster', [
      '--skip-systemctl-redirect',
      version,
      name,
      action,
      ...(action === 'stop' ? ['-m', 'fast'] : []),
    ]);
  let running = false;
  const start = async () => {
    if (running) return;
    await ctl('start');
    running = true;
  };
  const stop = async () => {
    if (!running) return;
    await ctl('stop');
    running = false;
  };
  const drop = async () => {
    if (!name.startsWith(CLUSTER_PREFIX)) throw new Error(`refusing to drop ${name}`);
    await run('pg_dropcluster', ['--stop', version, name]).catch(() => {});
    running = false;
    // pg_dropcluster leaves the configuration directory behind while our conf.d file is in it.
    await rm(confDir, { recursive: true, force: true });
  };

  try {
    await start();
  } catch (error) {
    await drop();
    throw error;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    restart: async (downMs = 0) => {
      await stop();
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      await start();
    },
    drop,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The test run's S3 gateway, frozen

/**
 * The radosgw this test run started (global-setup through scripts/s3-local.sh) in `rgwDir`; undefined when the run
 * uses an S3 server named by the environment, which is not ours to freeze.
 */
async function gatewayPid(rgwDir: string | undefined): Promise<number | undefined> {
  if (!rgwDir) return undefined;
  const pid = Number((await readFile(path.join(rgwDir, 'run', 'rgw.pid'), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  // The pid file may outlive its process and the pid be reused: only ever signal a radosgw.
  const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
  return comm.trim() === 'radosgw' ? pid : undefined;
}

/** Why the gateway cannot be paused in this run, or undefined when it can (for `test.skipIf` and its message). */
export async function gatewayPauseUnavailable(rgwDir: string | undefined): Promise<string | undefined> {
  if (!rgwDir) return 'the S3 server was named by the environment (S3_ENDPOINT), not started by this test run';
  if ((await gatewayPid(rgwDir)) === undefined) return `no live radosgw behind ${rgwDir}/run/rgw.pid`;
  return undefined;
}

async function signalGateway(rgwDir: string | undefined, signal: 'SIGSTOP' | 'SIGCONT'): Promise<void> {
  const pid = await gatewayPid(rgwDir);
  if (pid === undefined) throw new Error(`cannot ${signal} the S3 gateway: ${await gatewayPauseUnavailable(rgwDir)}`);
  process.kill(pid, signal);
}

/**
 * Freezes the gateway (SIGSTOP): its kernel still accepts connections, but no request is answered, the way a hung
 * server behaves. Call resumeGateway in a finally or afterAll: a stopped gateway hangs every later test of the run.
 */
export const pauseGateway = (rgwDir: string | undefined) => signalGateway(rgwDir, 'SIGSTOP');

/** Lets a paused gateway run again (SIGCONT); harmless when it is not paused. */
export const resumeGateway = (rgwDir: string | undefined) => signalGateway(rgwDir, 'SIGCONT');
