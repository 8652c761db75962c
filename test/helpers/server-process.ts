/**
 * Freight as a real process, the way `npm start` runs it, so that a test can kill it (SIGKILL is a crash: no
 * shutdown hooks, no finished requests), start it again, and run two of them on one database and bucket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, repoRoot } from '../../scripts/services.js';

/** Built by test/global-setup.ts. */
const SERVER = path.join(repoRoot(), 'dist', 'src', 'server.js');
/** The V8 flags of `npm start` (package.json), so memory behaves as in production. */
const NODE_FLAGS = ['--max-semi-space-size=2', '--heap-growing-percent=200'];
const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

export interface ServerProcess {
  /** http://127.0.0.1:<port>, the same across restarts. */
  readonly url: string;
  readonly port: number;
  /** The pid of the current process (a new one after restart()). */
  readonly pid: number;
  /** Resolves with the current process's exit code (null when a signal ended it) once it has exited. */
  readonly exited: Promise<number | null>;
  /** Sends `signal` (default SIGTERM) and resolves once the process has exited; at once if it already has. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again with the same environment and port (stopping it first if it still runs). */
  restart(): Promise<void>;
  /** SIGTERM, SIGKILL after 5 s, then removes the directories this helper created. For finally/afterAll. */
  stop(): Promise<void>;
  /** Everything the process(es) wrote to stdout and stderr so far, across restarts. */
  output(): string;
}

type Env = Record<string, string | undefined>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Spawns dist/src/server.js with `env` (plus PATH and HOME, nothing else of the test process's environment) on a
 * free port of 127.0.0.1 and resolves once GET /healthz answers 200.
 *
 * DATA_DIR, when `env` has none, is a new temporary directory. TMPDIR is left to the server (DATA_DIR/tmp) unless
 * `env` names one: each process buffers parts in a directory of its own there (src/storage/temp-dir.ts), which
 * is what two processes sharing DATA_DIR must show.
 */
export async function startServerProcess(env: Env): Promise<ServerProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const ownDirs: string[] = [];
  const ownDir = async (prefix: string) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
    ownDirs.push(dir);
    return dir;
  };
  const childEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? os.tmpdir(),
    // As `npm start`: fewer glibc arenas and a fixed mmap threshold, less RSS that is only fragmentation.
    MALLOC_ARENA_MAX: '2',
    MALLOC_MMAP_THRESHOLD_: '131072',
  };
  if (env.DATA_DIR === undefined) childEnv.DATA_DIR = await ownDir('freight-proc-data-');
  for (const [name, value] of Object.entries(env)) if (value !== undefined) childEnv[name] = value;
  childEnv.HOST = '127.0.0.1';
  childEnv.PORT = String(port);

  const logs: string[] = [];
  let child!: ChildProcess;
  let exited!: Promise<number | null>;

  const isRunning = () => child.exitCode === null && child.signalCode === null;

  const launch = async () => {
    child = spawn(process.execPath, [...NODE_FLAGS, SERVER], {
      cwd: repoRoot(),
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
    exited = new Promise((resolve) => {
      // 'close', not 'exit': by then the last lines it wrote are in output().
      child.once('close', (code) => resolve(code));
      child.once('error', (error) => {
        logs.push(`spawn failed: ${error.message}\n`);
        resolve(null);
      });
    });
    const thisChild = child;
    let gone = false;
    void exited.then(() => (gone = true));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (gone)
        throw new Error(
          `freight exited (code ${thisChild.exitCode}, signal ${thisChild.signalCode}) before /healthz answered:\n${logs.join('')}`,
        );
      if (Date.now() > deadline) {
        thisChild.kill('SIGKILL');
        await exited;
        throw new Error(`freight did not answer /healthz within ${READY_TIMEOUT_MS / 1000} s:\n${logs.join('')}`);
      }
      const status = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) }).then(
        (res) => res.status,
        () => 0,
      );
      if (status === 200) return;
      await sleep(50);
    }
  };

  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (isRunning()) child.kill(signal);
    await exited;
  };

  /** SIGTERM lets in-flight requests finish (server.ts waits up to 10 s); a test does not wait that long. */
  const terminate = async () => {
    if (!isRunning()) {
      await exited;
      return;
    }
    const current = child;
    const killer = setTimeout(() => current.kill('SIGKILL'), STOP_GRACE_MS);
    await kill('SIGTERM');
    clearTimeout(killer);
  };

  try {
    await launch();
  } catch (error) {
    await Promise.all(ownDirs.map((dir) => rm(dir, { recursive: true, force: true })));
    throw error;
  }

  return {
    url,
    port,
    get pid() {
      return child.pid ?? -1;
    },
    get exited() {
      return exited;
    },
    kill,
    restart: async () => {
      await terminate();
      await launch();
    },
    stop: async () => {
      await terminate();
      await Promise.all(ownDirs.map((dir) => rm(dir, { recursive: true, force: true })));
    },
    output: () => logs.join(''),
  };
}
