/**
 * The native SHA-256 as a process sees it: `npm install` fails, saying why, when it cannot be built (there is no
 * slower fallback to drift from it), and a process that hashed on libuv's threadpool exits by itself once idle.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, test } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const BUILD = path.join('native', 'sha256', 'build.mjs');

describe('native SHA-256', () => {
  test('the install fails, saying so, where Node’s headers are not found (it never downloads them)', () => {
    const result = spawnSync(process.execPath, [BUILD], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, npm_config_nodedir: path.join(os.tmpdir(), 'no-node-here') },
      timeout: 30_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Freight: the native SHA-256 (native/sha256) could not be built.');
    expect(result.stderr).toContain("Node's headers are not in");
  });

  test('the install fails, saying what to install, where there is no working C compiler', async () => {
    // A copy of native/sha256, so that the checkout's own build is left alone.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'freight-sha256-'));
    try {
      await cp(path.join(ROOT, 'native', 'sha256'), dir, {
        recursive: true,
        filter: (source) => !source.includes(`${path.sep}build${path.sep}`) && !source.endsWith(`${path.sep}build`),
      });
      const result = spawnSync(process.execPath, [path.join(dir, 'build.mjs')], {
        encoding: 'utf8',
        env: { ...process.env, CC: '/bin/false', CXX: '/bin/false' },
        timeout: 60_000,
      });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('Freight: the native SHA-256 (native/sha256) could not be built.');
      expect(result.stderr).toContain('python3, make and a C compiler');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a process that hashed on the threadpool, saved and finished exits by itself, with the right digest', () => {
    const digestModule = pathToFileURL(path.join(ROOT, 'dist', 'src', 'uploads', 'digest.js')).href;
    const script = `
      import { RunningDigest } from ${JSON.stringify(digestModule)};
      const data = Buffer.alloc(9 * 1024 * 1024 + 5, 7);
      const digest = await RunningDigest.resume(null, 0);
      for (let at = 0; at < data.length; at += 65536) await digest.update(data.subarray(at, at + 65536));
      await digest.save();
      console.log(await digest.hex());
      digest.close();
    `;
    const started = Date.now();
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe(
      createHash('sha256')
        .update(Buffer.alloc(9 * 1024 * 1024 + 5, 7))
        .digest('hex'),
    );
    // Bounded by the timeout above (a ref'd handle would hold it there); here it is well under it.
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
