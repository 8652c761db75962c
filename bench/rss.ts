/** Server RSS over time: whether it grows, and a plot of it. */
import { MiB } from './numbers.js';

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);

/** Samples (one a second) below which an upload is too short to tell growth from noise. */
const MIN_GROWTH_SAMPLES = 8;

/** Peak RSS, and the change from the second to the last quarter of the upload (null if too short to tell). */
export function rssGrowth(points: Array<[number, number]>): { peak: number; growth: number | null } {
  const rss = points.map(([, value]) => value);
  const quarter = Math.floor(rss.length / 4);
  return {
    peak: Math.max(...rss),
    growth: rss.length < MIN_GROWTH_SAMPLES ? null : mean(rss.slice(-quarter)) - mean(rss.slice(quarter, 2 * quarter)),
  };
}

/** The change rssGrowth found, in words: `over` names what was sampled ("the upload"). */
export const growthText = (growth: number | null, over = 'the upload') =>
  growth === null
    ? `too short to tell (under ${MIN_GROWTH_SAMPLES} samples)`
    : `${growth >= 0 ? '+' : ''}${(growth / MiB).toFixed(1)} MiB from the second to the last quarter of ${over}`;

/** A small line chart of RSS over time, one line per series. */
export function rssSvg(
  series: Array<{ name: string; color: string; points: Array<[number, number]> }>,
  title: string,
): string {
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
  parts.push(
    `<text x="16" y="${height / 2}" text-anchor="middle" transform="rotate(-90 16 ${height / 2})">RSS (MiB)</text>`,
  );
  series.forEach((s, i) => {
    const path = s.points
      .map(([t, rss], j) => `${j ? 'L' : 'M'}${x(t).toFixed(1)},${y(rss / MiB).toFixed(1)}`)
      .join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    parts.push(`<rect x="${pad.left + 10}" y="${pad.top + 4 + i * 18}" width="12" height="12" fill="${s.color}"/>`);
    parts.push(`<text x="${pad.left + 28}" y="${pad.top + 14 + i * 18}">${s.name}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
