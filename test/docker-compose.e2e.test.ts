/**
 * docker-compose.yml, checked as far as a machine without a Docker engine can: `docker-compose config` validates
 * it against the Compose schema and resolves its variables. test/global-setup.ts installs Debian's docker-compose
 * where it is missing: this test never skips itself.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, test } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');

function compose(args: string[], env: Record<string, string> = {}) {
  return spawnSync('docker-compose', args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    timeout: 60_000,
  });
}

describe('docker-compose.yml (docker-compose config)', () => {
  test('is a valid Compose file that builds Freight and signs client URLs for the host', () => {
    const secret = { AUTH_JWT_SECRET: 'compose-test-secret-0123456789abcdef' };
    // One run (docker-compose takes seconds to start): `config` validates as `config -q` does, then prints.
    const result = compose(['config'], secret);
    expect(result.status, result.stderr).toBe(0);
    const rendered = result.stdout;
    expect(rendered).toMatch(/build:\n\s+context: /);
    expect(rendered).toContain('S3_ENDPOINT: http://minio:9000');
    expect(rendered).toContain('S3_PUBLIC_ENDPOINT: http://localhost:9000');
    expect(rendered).toContain(`AUTH_JWT_SECRET: ${secret.AUTH_JWT_SECRET}`);
    expect(rendered).toContain('node dist/scripts/s3-bucket.js && exec npm start');
  });

  test('refuses to start without AUTH_JWT_SECRET, saying so', () => {
    const result = compose(['config', '-q']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('set AUTH_JWT_SECRET');
  });
});
