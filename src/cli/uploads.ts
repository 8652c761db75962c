/**
 * freight uploads [--user U] [--status S] [--limit N] [--json] and freight uploads <id> [--json]: uploads as the
 * database records them, for an operator (any user's), as a table or as JSON.
 */
import { uploadView } from '../api/views.js';
import { formatBytes } from '../config/units.js';
import { openDatabase } from '../db/client.js';
import { UploadRepository } from '../db/repository.js';
import { isUploadId } from '../db/ids.js';
import { UPLOAD_STATUSES, type FileUpload, type UploadPart, type UploadStatus } from '../db/schema.js';
import { CliError, configFrom, parse, usageError, type Command } from './command.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 10_000;

/** A value for a terminal: control characters (a file name's CR/LF, an escape sequence) shown escaped, not obeyed. */
const printable = (text: string): string =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it escapes
  text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return `${rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n')}\n`;
}

const size = (bytes: number | null) => (bytes === null ? '?' : formatBytes(bytes));

/** An upload as the operator sees it: the owner's view plus what only the server knows. */
function detail(upload: FileUpload) {
  return {
    ...uploadView(upload),
    userId: upload.userId,
    storedOffset: upload.storedOffset,
    s3UploadId: upload.s3UploadId,
    metadata: upload.metadata,
  };
}

function listText(uploads: FileUpload[]): string {
  if (uploads.length === 0) return 'no uploads\n';
  return table([
    ['ID', 'USER', 'PROTOCOL', 'STATUS', 'SIZE', 'RECEIVED', 'CREATED', 'FILENAME'],
    ...uploads.map((upload) => [
      upload.id,
      printable(upload.userId),
      upload.protocol,
      upload.status,
      size(upload.totalSize),
      size(upload.bytesReceived),
      upload.createdAt.toISOString(),
      printable(upload.filename ?? ''),
    ]),
  ]);
}

function detailText(upload: FileUpload, parts: UploadPart[]): string {
  const fields = Object.entries(detail(upload)).map(([name, value]) => [
    `${name}:`,
    value === null || value === undefined
      ? '-'
      : printable(typeof value === 'object' ? JSON.stringify(value) : String(value)),
  ]);
  const stored = parts.filter((part) => part.status === 'stored').length;
  fields.push(['parts:', `${parts.length} (${stored} stored, ${parts.length - stored} pending)`]);
  return table(fields);
}

export const command: Command = {
  usage: `Usage: freight uploads [--user <user>] [--status <status>] [--limit <n>] [--json]
       freight uploads <id> [--json]

Lists uploads of every user from the database, newest first, or shows one upload with its parts.
With the embedded database (no DATABASE_URL), stop the server first: only one process can open it.

Options:
  --user <user>       only this user's uploads
  --status <status>   only uploads in this status: ${UPLOAD_STATUSES.join(', ')}
  --limit <n>         at most n uploads (1..${MAX_LIMIT}, default ${DEFAULT_LIMIT})
  --json              JSON instead of a table
`,
  async run(args, env) {
    const { values, positionals } = parse('uploads', args, {
      user: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
    });
    const [id, extra] = positionals;
    if (extra !== undefined) throw usageError('uploads', `unexpected argument "${extra}"`);
    if (id !== undefined && (values.user !== undefined || values.status !== undefined || values.limit !== undefined)) {
      throw usageError('uploads', '--user, --status and --limit list uploads; they do not go with an upload id');
    }
    if (id !== undefined && !isUploadId(id)) throw usageError('uploads', `"${printable(id)}" is not an upload id`);
    const status = values.status as UploadStatus | undefined;
    if (status !== undefined && !UPLOAD_STATUSES.includes(status)) {
      throw usageError('uploads', `--status must be one of ${UPLOAD_STATUSES.join(', ')}, got "${printable(status)}"`);
    }
    const limit = values.limit === undefined ? DEFAULT_LIMIT : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw usageError('uploads', `--limit must be a whole number from 1 to ${MAX_LIMIT}, got "${values.limit}"`);
    }

    const config = configFrom(env);
    const database = await openDatabase({
      url: config.databaseUrl,
      dataDir: config.dataDir,
      timeoutMs: config.databaseTimeoutMs,
    });
    try {
      const repository = new UploadRepository(database.db);
      if (id === undefined) {
        const uploads = await repository.listings.listUploads({ userId: values.user, status, limit });
        process.stdout.write(values.json ? `${JSON.stringify(uploads.map(detail), null, 2)}\n` : listText(uploads));
        return 0;
      }
      const upload = await repository.findUpload(id);
      if (!upload) throw new CliError(`freight uploads: no upload ${id}`, 1);
      const parts = await repository.parts.listParts(id);
      const json = {
        ...detail(upload),
        parts: parts.map((part) => ({
          partNumber: part.partNumber,
          size: part.size,
          etag: part.etag,
          status: part.status,
        })),
      };
      process.stdout.write(values.json ? `${JSON.stringify(json, null, 2)}\n` : detailText(upload, parts));
      return 0;
    } finally {
      await database.close();
    }
  },
};
