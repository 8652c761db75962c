/**
 * "In this tab": one line per file Uppy holds, with a progress bar, bytes, speed and time left, measured here
 * over the last few seconds (so a stall shows at once). Redrawn at most twice a second.
 */
import type Uppy from '@uppy/core';
import { formatBytes, formatDuration } from './format.js';

const WINDOW_MS = 5_000;

interface Samples {
  points: Array<[time: number, bytes: number]>;
}

export function createTransfers(list: HTMLUListElement, empty: HTMLElement, uppy: Uppy): { render(): void } {
  const samples = new Map<string, Samples>();
  uppy.on('upload-progress', (file, progress) => {
    if (!file) return;
    const entry = samples.get(file.id) ?? { points: [] };
    const now = Date.now();
    entry.points.push([now, progress.bytesUploaded]);
    while (entry.points.length > 2 && now - entry.points[0]![0] > WINDOW_MS) entry.points.shift();
    samples.set(file.id, entry);
  });
  uppy.on('file-removed', (file) => samples.delete(file.id));

  const speedOf = (id: string): number => {
    const points = samples.get(id)?.points ?? [];
    const first = points[0];
    const last = points.at(-1);
    if (!first || !last || last[0] - first[0] < 500) return 0;
    // Measured up to now: no progress since the last event counts as slowing down.
    return Math.max(0, (last[1] - first[1]) / ((Date.now() - first[0]) / 1000));
  };

  let scheduled = false;
  const draw = () => {
    scheduled = false;
    const files = uppy.getFiles();
    empty.hidden = files.length > 0;
    const items = files.map((file) => {
      const total = file.size ?? file.progress.bytesTotal ?? 0;
      const sent = file.progress.uploadComplete ? total : Number(file.progress.bytesUploaded || 0);
      const percent = total > 0 ? Math.floor((sent / total) * 100) : file.progress.uploadComplete ? 100 : 0;
      let state: string;
      let detail = `${percent}% · ${formatBytes(sent)} of ${formatBytes(total)}`;
      if (file.progress.uploadComplete) state = 'completed';
      else if (file.error) state = `failed, retrying: ${file.error}`;
      else if (file.isPaused) state = 'paused';
      else if (file.progress.uploadStarted && !navigator.onLine) state = 'waiting for the network';
      else if (file.progress.uploadStarted) {
        state = 'uploading';
        const speed = speedOf(file.id);
        detail +=
          speed > 0
            ? ` · ${formatBytes(speed)}/s · ${formatDuration((total - sent) / speed)} left`
            : ' · measuring speed…';
      } else state = 'ready';

      const item = document.createElement('li');
      item.dataset.file = file.name ?? '';
      item.dataset.state = state.split(',')[0];
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = file.name ?? '(unnamed)';
      const bar = document.createElement('progress');
      bar.max = 100;
      bar.value = percent;
      bar.setAttribute('aria-label', `${file.name}: ${percent}%`);
      const text = document.createElement('span');
      text.className = 'detail';
      text.textContent = `${state} · ${detail}`;
      item.append(name, bar, text);
      return item;
    });
    list.replaceChildren(...items);
  };

  const render = () => {
    if (scheduled) return;
    scheduled = true;
    setTimeout(draw, 500);
  };
  // Offline, Uppy says nothing: the lines say so themselves, and again when the network is back.
  window.addEventListener('offline', render);
  window.addEventListener('online', render);
  return { render };
}
