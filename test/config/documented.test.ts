/**
 * What users read is what the server does: every variable the configuration reads is in the configuration page's
 * table (docs/configuration.md) and in .env.example, and every error code is in the errors page's table
 * (docs/errors.md) with its status.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ERROR_CODES } from '../../src/errors.js';

const root = path.resolve(import.meta.dirname, '..', '..');
const configurationPage = readFileSync(path.join(root, 'docs', 'configuration.md'), 'utf8');
const errorsPage = readFileSync(path.join(root, 'docs', 'errors.md'), 'utf8');
const envExample = readFileSync(path.join(root, '.env.example'), 'utf8');

/** The rows of a page's tables whose first cell starts with `start`. */
function tableRows(page: string, start: string): string[] {
  return page.split('\n').filter((line) => line.startsWith(`| ${start}`));
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
  test('every configuration variable has a row in docs/configuration.md and a line in .env.example', () => {
    const names = variablesRead();
    expect(names).toEqual(expect.arrayContaining(['PORT', 'S3_BUCKET', 'S3_TAGGING', 'UPLOAD_SHA256', 'WEBHOOK_URL']));
    const rows = tableRows(configurationPage, '`');
    const firstCells = rows.map((row) => row.split('|')[1]!);
    for (const name of names) {
      expect(
        firstCells.some((cell) => cell.includes(`\`${name}\``)),
        `docs/configuration.md's table has no row for ${name}`,
      ).toBe(true);
      expect(envExample, `.env.example does not mention ${name}`).toMatch(new RegExp(`^#? ?${name}=`, 'm'));
    }
  });

  test('every value .env.example sets is the default docs/configuration.md gives, and loadConfig takes it', () => {
    const defaults = new Map(
      tableRows(configurationPage, '`').flatMap((row) => {
        const [names = '', fallback = ''] = row.split('|').slice(1);
        return [...names.matchAll(/`([A-Z0-9_]+)`/g)].map((match) => [match[1]!, fallback.trim()] as const);
      }),
    );
    const set = [...envExample.matchAll(/^([A-Z0-9_]+)=(.*)$/gm)].map((match) => [match[1]!, match[2]!] as const);
    expect(set.length).toBeGreaterThan(20);
    for (const [name, value] of set) {
      expect(defaults.get(name), `.env.example sets ${name}=${value}, the table's default differs`).toBe(
        `\`${value}\``,
      );
    }
    // The file as a whole is a valid configuration (what a user who copies it gets).
    expect(() => loadConfig(Object.fromEntries(set))).not.toThrow();
  });

  test('every error code is in docs/errors.md with its status', () => {
    const rows = tableRows(errorsPage, '`ERR_');
    const documented = new Map(
      rows
        .map((row) => row.split('|').map((cell) => cell.trim()))
        .map((cells) => [cells[1]!.replaceAll('`', ''), cells[2]!]),
    );
    for (const [code, status] of Object.entries(ERROR_CODES)) {
      expect(documented.has(code), `docs/errors.md's table has no row for ${code}`).toBe(true);
      // ERR_UPLOAD_REJECTED carries the status the pre-create webhook chose: documented as 4xx.
      expect([String(status), '4xx']).toContain(documented.get(code));
    }
    expect([...documented.keys()].filter((code) => !(code in ERROR_CODES))).toEqual([]);
  });
});
