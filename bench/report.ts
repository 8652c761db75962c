/** The benchmark's outputs: the JSON record, the markdown page and the RSS plot. */

export interface Run {
  contender: string;
  size: number;
  round: number;
  seconds: number;
  mbPerSecond: number;
  serverCpuSeconds: number | null;
  gatewayCpuSeconds: number | null;
  serverPeakRss: number | null;
  peakTempDisk: number | null;
  requests: number;
}

export interface Summary {
  contender: string;
  size: number;
  mbPerSecond: number;
  ratioToLimit: number;
  serverCpuPerGiB: number | null;
  gatewayCpuPerGiB: number | null;
  serverPeakRss: number | null;
  peakTempDisk: number | null;
  requests: number;
}

export const MB = 1e6;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

const maxOrNull = (values: Array<number | null>): number | null => {
  const known = values.filter((value): value is number => value !== null);
  return known.length ? Math.max(...known) : null;
};

export function summarize(runs: Run[]): Summary[] {
  const out: Summary[] = [];
  const sizes = [...new Set(runs.map((run) => run.size))];
  for (const size of sizes) {
    const ofSize = runs.filter((run) => run.size === size);
    const contenders = [...new Set(ofSize.map((run) => run.contender))];
    const limit = median(ofSize.filter((run) => run.contender === 'limit').map((run) => run.mbPerSecond));
    for (const contender of contenders) {
      const mine = ofSize.filter((run) => run.contender === contender);
      const perGiB = (value: number | null) => (value === null ? null : value / (size / GiB));
      const cpu = mine.map((run) => run.serverCpuSeconds).filter((value): value is number => value !== null);
      const gateway = mine.map((run) => run.gatewayCpuSeconds).filter((value): value is number => value !== null);
      const mbPerSecond = median(mine.map((run) => run.mbPerSecond));
      out.push({
        contender,
        size,
        mbPerSecond,
        ratioToLimit: limit ? mbPerSecond / limit : NaN,
        serverCpuPerGiB: cpu.length ? perGiB(median(cpu)) : null,
        gatewayCpuPerGiB: gateway.length ? perGiB(median(gateway)) : null,
        serverPeakRss: maxOrNull(mine.map((run) => run.serverPeakRss)),
        peakTempDisk: maxOrNull(mine.map((run) => run.peakTempDisk)),
        requests: median(mine.map((run) => run.requests)),
      });
    }
  }
  return out;
}

export function formatSize(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB) return `${Math.round(bytes / MiB)} MiB`;
  return `${Math.round(bytes / 1024)} KiB`;
}

const num = (value: number | null, digits: number, unit = '') => (value === null || Number.isNaN(value) ? '—' : `${value.toFixed(digits)}${unit}`);

export function summaryTable(summaries: Summary[]): string {
  const lines: string[] = [];
  for (const size of [...new Set(summaries.map((s) => s.size))]) {
    lines.push(`**${formatSize(size)}**`, '');
    lines.push('| contender | MB/s (median) | × limit | server CPU s/GiB | gateway CPU s/GiB | server peak RSS | peak temp disk | requests |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of summaries.filter((summary) => summary.size === size)) {
      lines.push(
        `| ${s.contender} | ${s.mbPerSecond.toFixed(1)} | ${num(s.ratioToLimit, 2, '×')} | ${num(s.serverCpuPerGiB, 3)} | ${num(s.gatewayCpuPerGiB, 2)} | ${num(s.serverPeakRss === null ? null : s.serverPeakRss / MiB, 0, ' MiB')} | ${num(s.peakTempDisk === null ? null : s.peakTempDisk / MiB, 0, ' MiB')} | ${s.requests} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** A small line chart of RSS over time, one line per series. */
export function rssSvg(series: Array<{ name: string; color: string; points: Array<[number, number]> }>, title: string): string {
  const width = 720;
  const height = 360;
  const pad = { left: 60, right: 20, top: 40, bottom: 50 };
  const maxT = Math.max(1, ...series.flatMap((s) => s.points.map(([t]) => t)));
  const maxMiB = Math.max(50, ...series.flatMap((s) => s.points.map(([, rss]) => rss / MiB))) * 1.15;
  const x = (t: number) => pad.left + (t / maxT) * (width - pad.left - pad.right);
  const y = (mib: number) => height - pad.bottom - (mib / maxMiB) * (height - pad.top - pad.bottom);
  const ticks = (max: number, count: number) => Array.from({ length: count + 1 }, (_, i) => (max / count) * i);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${title}</text>`,
  ];
  for (const value of ticks(maxMiB, 5)) {
    parts.push(`<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(value)}" y2="${y(value)}" stroke="#ddd"/>`);
    parts.push(`<text x="${pad.left - 6}" y="${y(value) + 4}" text-anchor="end">${value.toFixed(0)}</text>`);
  }
  for (const value of ticks(maxT, 6)) {
    parts.push(`<text x="${x(value)}" y="${height - pad.bottom + 18}" text-anchor="middle">${value.toFixed(0)}</text>`);
  }
  parts.push(`<text x="${width / 2}" y="${height - 12}" text-anchor="middle">seconds</text>`);
  parts.push(`<text x="16" y="${height / 2}" text-anchor="middle" transform="rotate(-90 16 ${height / 2})">RSS (MiB)</text>`);
  series.forEach((s, i) => {
    const path = s.points.map(([t, rss], j) => `${j ? 'L' : 'M'}${x(t).toFixed(1)},${y(rss / MiB).toFixed(1)}`).join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    parts.push(`<rect x="${pad.left + 10}" y="${pad.top + 4 + i * 18}" width="12" height="12" fill="${s.color}"/>`);
    parts.push(`<text x="${pad.left + 28}" y="${pad.top + 14 + i * 18}">${s.name}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
