/**
 * docker-compose.yml, checked as far as a machine without a Docker engine can: `docker-compose config` validates
 * it against the Compose schema and resolves its variables. (Skipped where docker-compose is not installed:
 * `apt-get install docker-compose`.)
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, test } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const installed = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;

function compose(args: string[], env: Record<string, string> = {}) {
  return spawnSync('docker-compose', args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    timeout: 60_000,
  });
}

describe.skipIf(!installed)('docker-compose.yml (docker-compose config)', () => {
  test('is a valid Compose file that builds Freight and signs client URLs for the host', () => {
    const secret = { AUTH_JWT_SECRET: 'compose-test-secret-0123456789abcdef' };
    expect(compose(['config', '-q'], secret).status).toBe(0);
    const rendered = compose(['config'], secret).stdout;
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
