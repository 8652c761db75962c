/**
 * What users read is what the server does: every variable the configuration reads is in the README's table and in
 * .env.example, and every error code is in the README's table of errors with its status.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ERROR_CODES } from '../../src/errors.js';

const root = path.resolve(import.meta.dirname, '..', '..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const envExample = readFileSync(path.join(root, '.env.example'), 'utf8');

/** The lines of the README section that starts with `heading`, up to the next heading of its level or above. */
function section(heading: string): string[] {
  const lines = readme.split('\n');
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`README has no "${heading}"`);
  const level = heading.indexOf(' ');
  const end = lines.findIndex((line, i) => i > start && /^#+ /.test(line) && line.indexOf(' ') <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Every variable loadConfig reads, with S3 and webhooks configured so that their variables are read too. */
function variablesRead(): string[] {
  const env: Record<string, string> = {
    AUTH_JWT_SECRET: 'x'.repeat(32),
    S3_BUCKET: 'freight',
    WEBHOOK_URL: 'http://127.0.0.1:9/hook',
    WEBHOOK_SECRET: 'y'.repeat(32),
  };
  const read = new Set<string>();
  const recording = new Proxy(env, {
    get(target, name) {
      if (typeof name === 'string') read.add(name);
      return target[name as string];
    },
  });
  loadConfig(recording);
  return [...read].sort();
}

describe('the documentation', () => {
  test('every configuration variable has a row in the README and a line in .env.example', () => {
    const names = variablesRead();
    expect(names).toEqual(expect.arrayContaining(['PORT', 'S3_BUCKET', 'S3_TAGGING', 'UPLOAD_SHA256', 'WEBHOOK_URL']));
    const rows = section('## Configuration').filter((line) => line.startsWith('| `'));
    const firstCells = rows.map((row) => row.split('|')[1]!);
    for (const name of names) {
      expect(
        firstCells.some((cell) => cell.includes(`\`${name}\``)),
        `README's configuration table has no row for ${name}`,
      ).toBe(true);
      expect(envExample, `.env.example does not mention ${name}`).toMatch(new RegExp(`^#? ?${name}=`, 'm'));
    }
  });

  test('every error code is in the README with its status', () => {
    const rows = section('## Errors').filter((line) => line.startsWith('| `ERR_'));
    const documented = new Map(
      rows
        .map((row) => row.split('|').map((cell) => cell.trim()))
        .map((cells) => [cells[1]!.replaceAll('`', ''), cells[2]!]),
    );
    for (const [code, status] of Object.entries(ERROR_CODES)) {
      expect(documented.has(code), `README's Errors table has no row for ${code}`).toBe(true);
      // ERR_UPLOAD_REJECTED carries the status the pre-create webhook chose: documented as 4xx.
      expect([String(status), '4xx']).toContain(documented.get(code));
    }
    expect([...documented.keys()].filter((code) => !(code in ERROR_CODES))).toEqual([]);
  });
});
