/** What a process costs, read from /proc: CPU seconds, resident memory; and the bytes under a directory. */
import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** Linux reports CPU times in clock ticks; 100 per second on every mainstream kernel configuration. */
const CLOCK_TICKS = 100;

export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after "(comm)": state is field 3, utime 14 and stime 15 (1-based)
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** The resident memory of a process; undefined once it has exited. */
export function rssBytes(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return 0;
  }
  for (const entry of entries) {
    try {
      const info = await stat(path.join(dir, entry));
      total += info.isDirectory() ? await dirBytes(path.join(dir, entry)) : info.size;
    } catch {
      // removed while we looked
    }
  }
  return total;
}

export interface Samples {
  peakRss: number;
  peakDisk: number;
  /** [seconds since start, RSS bytes] */
  rss: Array<[number, number]>;
}

/** Samples a process's RSS and a directory's size every `intervalMs` until stopped. */
export function sample(
  pid: number | undefined,
  dir: string | undefined,
  intervalMs: number,
): { stop(): Promise<Samples> } {
  const started = Date.now();
  const result: Samples = { peakRss: 0, peakDisk: 0, rss: [] };
  let running = true;
  const loop = (async () => {
    while (running) {
      const rss = pid === undefined ? undefined : rssBytes(pid);
      if (rss !== undefined) {
        result.peakRss = Math.max(result.peakRss, rss);
        result.rss.push([(Date.now() - started) / 1000, rss]);
      }
      if (dir !== undefined) result.peakDisk = Math.max(result.peakDisk, await dirBytes(dir));
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return result;
    },
  };
}
