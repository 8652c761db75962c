/**
 * `freight upload <file…> --endpoint URL [--token-file F] [--direct] [--parallel N] [--chunk-size S] [--json]`
 *
 * Uploads files with a progress bar each, resumably: Ctrl-C (or a crash), then the same command again, and each
 * file continues where the server's copy ends. Exit code 0 only when every file is on the server (completed, or
 * awaiting its approval).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseSize } from '../config/units.js';
import type { Command, Env } from './command.js';
import { directTransfer } from './direct-transfer.js';
import { FileProgress, ProgressBoard } from './progress.js';
import { DEFAULT_TUS_CHUNK, tusTransfer } from './tus-transfer.js';
import { FILE_BACKOFF, TransferError, type TransferResult, type TransferSettings } from './transfer.js';
import { UploadLocks, describeHolder } from './upload-lock.js';
import { UploadState, fingerprint, localFile, type LocalFile } from './upload-state.js';

export const UPLOAD_USAGE = `usage: freight upload <file…> --endpoint URL [options]

Uploads each file, resumably. Interrupted (Ctrl-C, a crash, a lost network)? Run the same command again: every
file continues from what the server holds. Exits 0 only when every file is on the server: completed, or stored
and awaiting its approval where the server has a pre-finish check (said per file).

  --endpoint URL     the server: Freight's base URL (tus goes to URL/files/), or any tus 1.0 server's
                     creation URL when URL has a path (e.g. https://tusd.example/files/)
  --token-file F     read the bearer token from file F (- for stdin)
  --token T          the bearer token itself. Avoid it: every user of this machine sees it in ps while the
                     command starts, and your shell history keeps it. Use $FREIGHT_TOKEN or --token-file.
                     No token is needed when the server runs with AUTH_DISABLED.
  --direct           straight to S3 through Freight's direct API (Freight only); default: tus
  --parallel N       transfers at once: tus, N files at a time; --direct, N parts of a file at a time (default 4)
  --chunk-size S     tus: bytes per PATCH (default 32MiB); --direct: bytes per part (default: the server's plan)
  --json             print the results as JSON on stdout (progress stays on stderr)

The token (from --token, else --token-file, else $FREIGHT_TOKEN) is sent to the origin of --endpoint only: an
upload URL the server hands out on another origin is used without it.

Resume state: one small file per upload under $XDG_STATE_HOME/freight (~/.local/state/freight), removed once
the upload is completed. A file being uploaded by another run of this command (its state is locked) is left
alone, with one line saying so.

Exit codes: 0 every file completed (or awaiting the server's approval); 1 a file failed or the token was
refused; 2 a usage mistake; 75 nothing failed, but another run is uploading some file (left alone: run again
later); 130 interrupted.
`;

/**
 * Exit codes: 0 all completed, 1 some file failed, 2 a usage error, 75 (sysexits' EX_TEMPFAIL: try again later)
 * some file is being uploaded by another run and nothing failed, 130 interrupted (Ctrl-C).
 */
const EXIT = { ok: 0, failed: 1, usage: 2, busy: 75, interrupted: 130 } as const;

interface FileOutcome {
  file: string;
  name: string;
  size: number;
  /** busy: another run of this command holds the file (its resume state is locked); nothing was sent. */
  /** awaiting_approval: stored whole and verified; the server's pre-finish check has not approved it yet. */
  status: 'completed' | 'awaiting_approval' | 'failed' | 'interrupted' | 'skipped' | 'busy';
  protocol: 'tus' | 'direct';
  id?: string;
  url?: string;
  resumedFrom?: number;
  seconds?: number;
  error?: string;
}

interface Parsed {
  files: string[];
  endpoint: URL;
  token: string | undefined;
  direct: boolean;
  parallel: number;
  chunkSize: number | undefined;
  json: boolean;
}

class UsageError extends Error {}

/** The token from --token-file: the file's text without its trailing newline. */
function readTokenFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read --token-file ${file}: ${(error as Error).message}`);
  }
  const token = text.trim();
  if (!token) throw new UsageError(`--token-file ${file} is empty`);
  if (/\s/.test(token))
    throw new UsageError(`--token-file ${file} holds more than one line or word; give it the token alone`);
  return token;
}

/**
 * What `ps` shows of this process from now on: the command line with the --token value blanked. Every user of
 * the machine could read it until here (and the shell's history keeps it): --help steers away from --token.
 */
function blankTokenInTitle(args: string[], token: string): void {
  const shown = args.map((arg) => (arg === token ? '***' : arg.startsWith('--token=') ? '--token=***' : arg));
  process.title = ['freight', 'upload', ...shown].join(' ');
}

function parse(args: string[], env: Env): Parsed | 'help' {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      endpoint: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      direct: { type: 'boolean', default: false },
      parallel: { type: 'string' },
      'chunk-size': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  if (positionals.length === 0) throw new UsageError('no file given');
  if (!values.endpoint) throw new UsageError('--endpoint URL is required');
  let endpoint: URL;
  try {
    endpoint = new URL(values.endpoint);
  } catch {
    throw new UsageError(`--endpoint ${values.endpoint} is not a URL`);
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:')
    throw new UsageError('--endpoint must be an http(s) URL');
  const parallel = values.parallel === undefined ? 4 : Number(values.parallel);
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64)
    throw new UsageError('--parallel must be an integer from 1 to 64');
  let chunkSize: number | undefined;
  if (values['chunk-size'] !== undefined) {
    chunkSize = parseSize(values['chunk-size']);
    if (!chunkSize) throw new UsageError(`--chunk-size ${values['chunk-size']} is not a size (e.g. 64MiB)`);
  }
  if (values.token !== undefined && values['token-file'] !== undefined)
    throw new UsageError('give the token one way: --token or --token-file');
  if (values.token !== undefined) blankTokenInTitle(args, values.token);
  const token =
    values.token ??
    (values['token-file'] !== undefined ? readTokenFile(values['token-file']) : env.FREIGHT_TOKEN?.trim() || undefined);
  return {
    files: positionals,
    endpoint,
    token,
    direct: values.direct,
    parallel,
    chunkSize,
    json: values.json,
  };
}

/** Freight's base URL and the tus creation URL, from --endpoint. */
export function endpoints(endpoint: URL): { server: string; tusEndpoint: string } {
  const base = endpoint.toString().replace(/\/+$/, '');
  if (endpoint.pathname === '/' || endpoint.pathname === '') return { server: base, tusEndpoint: `${base}/files/` };
  return { server: base, tusEndpoint: endpoint.toString() };
}

/**
 * Whether an upload endpoint answers at all: one request before any file, so that a wrong URL is one clear line
 * at once rather than every file retrying for minutes. tus: OPTIONS, which every tus server answers without a
 * token, with Tus-Version. Direct: Freight's /healthz.
 */
async function checkEndpoint(url: string, tus: boolean): Promise<string | undefined> {
  try {
    const res = await fetch(url, { method: tus ? 'OPTIONS' : 'GET', signal: AbortSignal.timeout(15_000) });
    await res.body?.cancel();
    if (tus && !res.headers.has('tus-version'))
      return `${url} is not a tus endpoint (OPTIONS answered ${res.status} without Tus-Version)`;
    if (!tus && !res.ok) return `${url} answered ${res.status}: is this a Freight server?`;
    return undefined;
  } catch (error) {
    const cause = (error as { cause?: { message?: string } }).cause?.message;
    return `cannot reach ${url}: ${cause ?? (error as Error).message}`;
  }
}

async function runAll(parsed: Parsed): Promise<number> {
  const { server, tusEndpoint } = endpoints(parsed.endpoint);
  const settings: TransferSettings = {
    server,
    tusEndpoint,
    token: parsed.token,
    chunkSize: parsed.chunkSize ?? (parsed.direct ? undefined : DEFAULT_TUS_CHUNK),
    parallelParts: parsed.parallel,
    state: new UploadState(),
    retry: FILE_BACKOFF,
  };

  const files: LocalFile[] = [];
  const keys: string[] = [];
  for (const given of parsed.files) {
    let file: LocalFile;
    try {
      file = await localFile(given);
    } catch (error) {
      console.error(
        `freight upload: ${given}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`,
      );
      return EXIT.usage;
    }
    // The name of the file's resume state (and of its lock): the file, the server and the protocol.
    const key = parsed.direct ? fingerprint(file, server, 'direct') : fingerprint(file, tusEndpoint, 'tus');
    if (keys.includes(key)) {
      console.error(`freight upload: ${given} is given more than once`);
      return EXIT.usage;
    }
    files.push(file);
    keys.push(key);
  }

  // Each file's resume state is locked for the whole run, before the server is asked anything.
  const locked = await lockFiles(new UploadLocks(settings.state.dir), files, keys);
  try {
    if (locked.busy.size === files.length) {
      // Nothing for this run to send: the server is not asked anything.
      if (parsed.json) printResults(files.map((file, index) => outcomeBefore(file, parsed, locked.busy.get(index))));
      return EXIT.busy;
    }
    const unreachable = await checkEndpoint(parsed.direct ? `${server}/healthz` : tusEndpoint, !parsed.direct);
    if (unreachable) {
      console.error(`freight upload: ${unreachable}`);
      return EXIT.failed;
    }
    return await transferAll(parsed, settings, files, keys, locked.busy);
  } finally {
    await locked.release();
  }
}

/**
 * Takes each file's lock. A file another run is uploading is left alone, said at once in one line (by its index:
 * why), and the others go ahead. A killed run's lock does not count (see upload-lock.ts).
 */
async function lockFiles(
  locks: UploadLocks,
  files: LocalFile[],
  keys: string[],
): Promise<{ busy: Map<number, string>; release(): Promise<void> }> {
  const releases: Array<() => Promise<void>> = [];
  const busy = new Map<number, string>();
  const release = async () => {
    await Promise.all(releases.map((done) => done().catch(() => {})));
  };
  try {
    for (const [index, file] of files.entries()) {
      const attempt = await locks.acquire(keys[index]!, file.realPath);
      if (attempt.held) releases.push(attempt.release);
      else {
        const message = `another freight upload is uploading it (${describeHolder(attempt.holder)}); left alone`;
        busy.set(index, message);
        console.error(`freight upload: ${file.path}: ${message}`);
      }
    }
  } catch (error) {
    await release();
    throw error;
  }
  return { busy, release };
}

/** A file's outcome until its transfer says otherwise: skipped, or busy (with why) when another run holds it. */
function outcomeBefore(file: LocalFile, parsed: Parsed, busy: string | undefined): FileOutcome {
  return {
    file: file.path,
    name: file.name,
    size: file.size,
    status: busy === undefined ? 'skipped' : 'busy',
    protocol: parsed.direct ? 'direct' : 'tus',
    ...(busy === undefined ? {} : { error: busy }),
  };
}

/** Every byte on the server: completed, or awaiting the pre-finish check's approval (the run's part is done). */
const isStored = (status: FileOutcome['status']) => status === 'completed' || status === 'awaiting_approval';

/** --json: the results on stdout. */
function printResults(outcomes: FileOutcome[]): void {
  const ok = outcomes.every((outcome) => isStored(outcome.status));
  console.log(JSON.stringify({ ok, files: outcomes }, null, 2));
}

/** Sends every file this run holds, `parallel` at a time (tus) or one after another (direct). */
async function transferAll(
  parsed: Parsed,
  settings: TransferSettings,
  files: LocalFile[],
  keys: string[],
  busy: Map<number, string>,
): Promise<number> {
  const transfer = parsed.direct ? directTransfer : tusTransfer;

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    // First Ctrl-C: stop sending and keep what the server has (the next run resumes). Second: leave at once.
    if (++interrupts > 1) process.exit(EXIT.interrupted);
    controller.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const progress = files.map((file, index) => {
    const shown = new FileProgress(file.name, file.size);
    // Told once already (the run's first lines), and not this run's to show.
    shown.hidden = busy.has(index);
    return shown;
  });
  const board = new ProgressBoard(progress, process.stderr);
  board.start();
  const outcomes = files.map((file, index) => outcomeBefore(file, parsed, busy.get(index)));
  let fatal: TransferError | undefined;

  const runOne = async (index: number) => {
    const file = files[index]!;
    const shown = progress[index]!;
    const outcome = outcomes[index]!;
    if (fatal || controller.signal.aborted || busy.has(index)) return;
    const started = Date.now();
    shown.state = 'uploading';
    try {
      const result: TransferResult = await transfer(
        { file, key: keys[index]!, progress: shown, signal: controller.signal },
        settings,
      );
      shown.update(file.size);
      shown.state = result.awaitingApproval ? 'awaiting approval' : 'completed';
      Object.assign(outcome, {
        status: result.awaitingApproval ? 'awaiting_approval' : 'completed',
        id: result.id,
        url: result.url,
        resumedFrom: result.resumedFrom,
      });
      shown.note =
        result.resumedFrom > 0 ? `resumed at ${Math.floor((result.resumedFrom / Math.max(1, file.size)) * 100)}%` : '';
    } catch (error) {
      if (controller.signal.aborted) {
        shown.state = 'interrupted';
        shown.note = 'run the same command again to resume';
        outcome.status = 'interrupted';
      } else {
        const message = error instanceof Error ? error.message : String(error);
        shown.state = 'failed';
        shown.note = message;
        Object.assign(outcome, { status: 'failed', error: message });
        if (error instanceof TransferError && error.fatal) {
          // Said once, in the closing line, rather than once per file.
          fatal ??= error;
          shown.hidden = true;
        }
      }
    } finally {
      outcome.seconds = Math.round((Date.now() - started) / 100) / 10;
    }
  };

  // tus: `parallel` files at a time. direct: one file at a time, `parallel` parts of it at once.
  const lanes = parsed.direct ? 1 : Math.min(parsed.parallel, files.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < files.length) await runOne(next++);
    }),
  );
  board.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);

  const stored = outcomes.filter((outcome) => isStored(outcome.status)).length;
  const awaiting = outcomes.filter((outcome) => outcome.status === 'awaiting_approval').length;
  if (parsed.json) printResults(outcomes);
  if (awaiting > 0) {
    console.error(
      `freight upload: ${awaiting} of ${files.length} stored and awaiting the server's approval (its pre-finish check); GET /api/uploads/<id> tells the outcome`,
    );
  }
  if (fatal) {
    console.error(`freight upload: refused: ${fatal.message}`);
    return EXIT.failed;
  }
  if (controller.signal.aborted) {
    console.error(
      `freight upload: interrupted; ${stored} of ${files.length} completed. Run the same command again to resume.`,
    );
    return EXIT.interrupted;
  }
  if (stored + busy.size < files.length) {
    console.error(`freight upload: ${files.length - busy.size - stored} of ${files.length} failed`);
    return EXIT.failed;
  }
  return busy.size > 0 ? EXIT.busy : EXIT.ok;
}

export const command: Command = {
  usage: UPLOAD_USAGE,
  async run(args, env) {
    let parsed: Parsed | 'help';
    try {
      parsed = parse(args, env);
    } catch (error) {
      if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
        console.error(`freight upload: ${(error as Error).message}\n\n${UPLOAD_USAGE}`);
        return EXIT.usage;
      }
      throw error;
    }
    if (parsed === 'help') {
      console.log(UPLOAD_USAGE);
      return EXIT.ok;
    }
    return runAll(parsed);
  },
};
