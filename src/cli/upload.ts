/**
 * `freight upload <file…> --endpoint URL [--token T] [--direct] [--parallel N] [--chunk-size S] [--json]`
 *
 * Uploads files with a progress bar each, resumably: Ctrl-C (or a crash), then the same command again, and each
 * file continues where the server's copy ends. Exit code 0 only when every file is completed on the server.
 */
import { parseArgs } from 'node:util';
import { parseSize } from '../config/units.js';
import type { Command } from './command.js';
import { directTransfer } from './direct-transfer.js';
import { FileProgress, ProgressBoard } from './progress.js';
import { DEFAULT_TUS_CHUNK, tusTransfer } from './tus-transfer.js';
import { FILE_BACKOFF, TransferError, type TransferResult, type TransferSettings } from './transfer.js';
import { UploadState, localFile, type LocalFile } from './upload-state.js';

export const UPLOAD_USAGE = `usage: freight upload <file…> --endpoint URL [options]

Uploads each file, resumably. Interrupted (Ctrl-C, a crash, a lost network)? Run the same command again: every
file continues from what the server holds. Exits 0 only when every file is completed on the server.

  --endpoint URL     the server: Freight's base URL (tus goes to URL/files/), or any tus 1.0 server's
                     creation URL when URL has a path (e.g. https://tusd.example/files/)
  --token T          bearer token (default: $FREIGHT_TOKEN); not needed when the server runs with AUTH_DISABLED
  --direct           straight to S3 through Freight's direct API (Freight only); default: tus
  --parallel N       transfers at once: tus, N files at a time; --direct, N parts of a file at a time (default 4)
  --chunk-size S     tus: bytes per PATCH (default 32MiB); --direct: bytes per part (default: the server's plan)
  --json             print the results as JSON on stdout (progress stays on stderr)

Resume state: one small file per upload under $XDG_STATE_HOME/freight (~/.local/state/freight), removed once
the upload is completed.`;

/** Exit codes: 0 all completed, 1 some file failed, 2 a usage error, 130 interrupted (Ctrl-C). */
const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

interface FileOutcome {
  file: string;
  name: string;
  size: number;
  status: 'completed' | 'failed' | 'interrupted' | 'skipped';
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

function parse(args: string[]): Parsed | 'help' {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      endpoint: { type: 'string' },
      token: { type: 'string' },
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
  return {
    files: positionals,
    endpoint,
    token: values.token ?? (process.env.FREIGHT_TOKEN || undefined),
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
  const transfer = parsed.direct ? directTransfer : tusTransfer;
  const protocol = parsed.direct ? 'direct' : 'tus';

  const files: LocalFile[] = [];
  for (const given of parsed.files) {
    try {
      files.push(await localFile(given));
    } catch (error) {
      console.error(
        `freight upload: ${given}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`,
      );
      return EXIT.usage;
    }
  }
  const unreachable = await checkEndpoint(parsed.direct ? `${server}/healthz` : tusEndpoint, !parsed.direct);
  if (unreachable) {
    console.error(`freight upload: ${unreachable}`);
    return EXIT.failed;
  }

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    // First Ctrl-C: stop sending and keep what the server has (the next run resumes). Second: leave at once.
    if (++interrupts > 1) process.exit(EXIT.interrupted);
    controller.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const progress = files.map((file) => new FileProgress(file.name, file.size));
  const board = new ProgressBoard(progress, process.stderr);
  board.start();
  const outcomes: FileOutcome[] = files.map((file) => ({
    file: file.path,
    name: file.name,
    size: file.size,
    status: 'skipped',
    protocol,
  }));
  let fatal: TransferError | undefined;

  const runOne = async (index: number) => {
    const file = files[index]!;
    const shown = progress[index]!;
    const outcome = outcomes[index]!;
    if (fatal || controller.signal.aborted) return;
    const started = Date.now();
    shown.state = 'uploading';
    try {
      const result: TransferResult = await transfer({ file, progress: shown, signal: controller.signal }, settings);
      shown.update(file.size);
      shown.state = 'completed';
      Object.assign(outcome, { status: 'completed', id: result.id, url: result.url, resumedFrom: result.resumedFrom });
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

  const completed = outcomes.filter((outcome) => outcome.status === 'completed').length;
  if (parsed.json) {
    console.log(JSON.stringify({ ok: completed === files.length, files: outcomes }, null, 2));
  }
  if (fatal) {
    console.error(`freight upload: refused: ${fatal.message}`);
    return EXIT.failed;
  }
  if (controller.signal.aborted) {
    console.error(
      `freight upload: interrupted; ${completed} of ${files.length} completed. Run the same command again to resume.`,
    );
    return EXIT.interrupted;
  }
  if (completed < files.length) {
    console.error(`freight upload: ${files.length - completed} of ${files.length} failed`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

export const command: Command = {
  usage: UPLOAD_USAGE,
  async run(args) {
    let parsed: Parsed | 'help';
    try {
      parsed = parse(args);
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
