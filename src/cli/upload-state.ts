/**
 * What `freight upload` remembers between runs, so that the same command after Ctrl-C, a crash or a reboot
 * resumes instead of starting over: per file, the upload it started (a tus upload URL, or a direct upload's id).
 *
 * One small JSON file per local file, named by the file's fingerprint (its real path, size and modification time,
 * the server, the protocol), under the user's state directory: $FREIGHT_STATE_DIR, else $XDG_STATE_HOME/freight,
 * else ~/.local/state/freight. A file that changed gets a new fingerprint, so it is never resumed onto old bytes.
 * Entries are written when an upload is created and removed once it is completed.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export type Protocol = 'tus' | 'direct';

export interface LocalFile {
  /** The path as given on the command line. */
  path: string;
  realPath: string;
  name: string;
  size: number;
  mtimeMs: number;
}

export interface SavedUpload {
  fingerprint: string;
  file: string;
  size: number;
  mtimeMs: number;
  server: string;
  protocol: Protocol;
  /** tus: the upload URL. */
  uploadUrl?: string;
  /** direct: the upload id. */
  id?: string;
  createdAt: string;
}

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FREIGHT_STATE_DIR) return env.FREIGHT_STATE_DIR;
  const base = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'freight');
}

export async function localFile(given: string): Promise<LocalFile> {
  const realPath = await realpath(given);
  const info = await stat(realPath);
  if (!info.isFile()) throw new Error(`${given} is not a regular file`);
  return { path: given, realPath, name: path.basename(realPath), size: info.size, mtimeMs: info.mtimeMs };
}

export function fingerprint(file: LocalFile, server: string, protocol: Protocol): string {
  return createHash('sha256')
    .update(JSON.stringify([file.realPath, file.size, file.mtimeMs, server, protocol]))
    .digest('hex');
}

export class UploadState {
  constructor(readonly dir: string = path.join(stateDir(), 'uploads')) {}

  private fileOf(fingerprint: string): string {
    return path.join(this.dir, `${fingerprint}.json`);
  }

  async load(fingerprint: string): Promise<SavedUpload | undefined> {
    let text: string;
    try {
      text = await readFile(this.fileOf(fingerprint), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      const saved = JSON.parse(text) as SavedUpload;
      return saved.fingerprint === fingerprint ? saved : undefined;
    } catch {
      // A torn or foreign file: forget it (the upload starts anew rather than failing for good).
      return undefined;
    }
  }

  /** Written to a temporary name and renamed, so a crash leaves the old entry or the new one, never half of one. */
  async save(entry: SavedUpload): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const temp = path.join(this.dir, `.${entry.fingerprint}.${randomUUID()}.tmp`);
    await writeFile(temp, `${JSON.stringify(entry, null, 2)}\n`, { mode: 0o600 });
    await rename(temp, this.fileOf(entry.fingerprint));
  }

  async forget(fingerprint: string): Promise<void> {
    await rm(this.fileOf(fingerprint), { force: true });
  }
}
