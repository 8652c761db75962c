/** `freight` run as a real process from the build (test/global-setup.ts builds dist/), as a person runs it. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../../scripts/services.js';

const MAIN = path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

export interface CliRun {
  child: ChildProcess;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** The exit code (null when a signal ended it), once the process has exited and its output is read. */
  exited: Promise<number | null>;
}

/** Spawns `freight <args>` with `env` plus PATH and HOME (nothing else of the test's environment). */
export function runCli(args: string[], env: Record<string, string>): CliRun {
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd: repoRoot(),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  const err: string[] = [];
  child.stdout!.on('data', (chunk: Buffer) => out.push(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => err.push(chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, stdout: () => out.join(''), stderr: () => err.join(''), exited };
}
