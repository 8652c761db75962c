/**
 * "My uploads", from GET /api/uploads: name, size, status, progress, SHA-256 where the server knows it, created
 * and completed times, a download for completed uploads and an abort for unfinished ones. Refreshed every few
 * seconds while this tab uploads, and now and then otherwise.
 */
import { formatBytes, formatTime } from './format.js';

export interface UploadRow {
  id: string;
  filename: string | null;
  protocol: 'tus' | 'direct';
  status: string;
  totalSize: number | null;
  bytesReceived: number;
  createdAt: string;
  completedAt: string | null;
  error: string | null;
  /** Present once the server records it (the integrity work); shown when there. */
  sha256?: string | null;
}

const UNFINISHED = new Set(['pending', 'uploading', 'failed']);
const ACTIVE_REFRESH_MS = 2_000;
const IDLE_REFRESH_MS = 20_000;

/**
 * Downloads a completed upload (either protocol) the way a browser downloads anything: Freight is asked (with the
 * token) for a short-lived link to it (POST /api/uploads/:id/download-link: on S3 a presigned GET, on the file
 * store a signed link to Freight), and the browser fetches that link itself, streaming it to disk with its own
 * download manager. The bytes never pass through this page's memory, whatever the file's size.
 */
async function download(row: UploadRow, filename: string, status: HTMLElement): Promise<void> {
  status.textContent = `Preparing the download of ${filename}…`;
  const res = await fetch(`/api/uploads/${encodeURIComponent(row.id)}/download-link`, { method: 'POST' });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { message?: string };
    status.textContent = `Download of ${filename} failed: ${body.message ?? res.status}`;
    return;
  }
  const { url } = (await res.json()) as { url: string };
  const link = document.createElement('a');
  link.href = url;
  // Honoured for Freight's own links; an S3 link names the file itself (Content-Disposition: attachment).
  link.download = filename;
  link.click();
  status.textContent = `Downloading ${filename}: your browser saves it.`;
}

async function abort(row: UploadRow): Promise<Response> {
  // Each protocol's own termination: tus DELETE, or the direct API's abort.
  if (row.protocol === 'tus')
    return fetch(`/files/${encodeURIComponent(row.id)}`, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } });
  return fetch(`/api/multipart/${encodeURIComponent(row.id)}`, { method: 'DELETE' });
}

function cell(text: string, className?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

export function createUploadsList(
  elements: { rows: HTMLTableSectionElement; status: HTMLElement; refresh: HTMLButtonElement },
  active: () => boolean,
) {
  let timer: ReturnType<typeof setTimeout> | undefined;

  const actionsFor = (row: UploadRow, name: string): HTMLTableCellElement => {
    const td = document.createElement('td');
    if (row.status === 'completed') {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = 'Download';
      button.setAttribute('aria-label', `Download ${name}`);
      button.addEventListener('click', () => void download(row, name, elements.status));
      td.append(button);
    } else if (UNFINISHED.has(row.status)) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'danger';
      button.textContent = 'Abort';
      button.setAttribute('aria-label', `Abort the upload of ${name}`);
      button.addEventListener('click', async () => {
        if (!confirm(`Abort the upload of ${name}? What was sent is deleted.`)) return;
        const res = await abort(row);
        elements.status.textContent = res.ok ? `Aborted ${name}.` : `Could not abort ${name}: ${res.status}`;
        await refresh();
      });
      td.append(button);
    }
    return td;
  };

  const render = (uploads: UploadRow[]) => {
    const rows = uploads.map((row) => {
      const name = row.filename ?? row.id;
      const tr = document.createElement('tr');
      tr.dataset.id = row.id;
      tr.dataset.status = row.status;
      const nameCell = cell(name, 'name');
      nameCell.title = `${row.protocol === 'tus' ? 'tus' : 'direct to S3'} · ${row.id}`;
      const total = row.totalSize;
      const percent = total ? Math.floor((row.bytesReceived / total) * 100) : row.status === 'completed' ? 100 : 0;
      const progressCell = document.createElement('td');
      const bar = document.createElement('progress');
      bar.max = 100;
      bar.value = percent;
      bar.setAttribute('aria-label', `${name}: ${percent}% stored`);
      progressCell.append(bar, ` ${percent}%`);
      const statusCell = cell(row.status, `status status-${row.status}`);
      if (row.error) statusCell.title = row.error;
      const hash = cell(row.sha256 ? `${row.sha256.slice(0, 12)}…` : '—', 'hash');
      if (row.sha256) hash.title = row.sha256;
      tr.append(
        nameCell,
        cell(total === null ? 'unknown' : formatBytes(total)),
        statusCell,
        progressCell,
        hash,
        cell(formatTime(row.createdAt)),
        cell(formatTime(row.completedAt)),
        actionsFor(row, name),
      );
      return tr;
    });
    elements.rows.replaceChildren(...rows);
  };

  const refresh = async (): Promise<void> => {
    clearTimeout(timer);
    try {
      const res = await fetch('/api/uploads?limit=50');
      if (res.ok) {
        const { uploads } = (await res.json()) as { uploads: UploadRow[] };
        render(uploads);
        const shown = uploads.length === 1 ? '1 upload' : `${uploads.length} most recent uploads`;
        elements.status.textContent =
          uploads.length === 0 ? 'No uploads yet.' : `${shown}, updated ${new Date().toLocaleTimeString()}.`;
      } else {
        elements.status.textContent = `Could not load your uploads: ${res.status}`;
      }
    } catch (error) {
      elements.status.textContent = `Could not load your uploads: ${(error as Error).message}`;
    }
    timer = setTimeout(() => void refresh(), active() ? ACTIVE_REFRESH_MS : IDLE_REFRESH_MS);
  };

  elements.refresh.addEventListener('click', () => void refresh());
  return {
    refresh,
    /** Sooner than planned: an upload started, ended or failed. */
    poke: () => {
      clearTimeout(timer);
      timer = setTimeout(() => void refresh(), 300);
    },
  };
}
