import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FileProgress, formatDuration, progressLine } from '../../src/cli/progress.js';
import { endpoints } from '../../src/cli/upload.js';
import { UploadState, fingerprint, localFile, stateDir } from '../../src/cli/upload-state.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'freight-cli-state-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('resume state', () => {
  test('lives under $FREIGHT_STATE_DIR, else $XDG_STATE_HOME/freight, else ~/.local/state/freight', () => {
    expect(stateDir({ FREIGHT_STATE_DIR: '/x' })).toBe('/x');
    expect(stateDir({ XDG_STATE_HOME: '/s' })).toBe('/s/freight');
    expect(stateDir({})).toBe(path.join(os.homedir(), '.local', 'state', 'freight'));
  });

  test('a file that changed (size or time) gets another fingerprint; so does another server or protocol', async () => {
    const file = path.join(dir, 'f.bin');
    await writeFile(file, 'abc');
    const before = fingerprint(await localFile(file), 'http://a/files/', 'tus');
    expect(fingerprint(await localFile(file), 'http://a/files/', 'tus')).toBe(before);
    expect(fingerprint(await localFile(file), 'http://b/files/', 'tus')).not.toBe(before);
    expect(fingerprint(await localFile(file), 'http://a/files/', 'direct')).not.toBe(before);
    await utimes(file, new Date(), new Date(Date.now() + 5_000));
    expect(fingerprint(await localFile(file), 'http://a/files/', 'tus')).not.toBe(before);
  });

  test('saved, loaded and forgotten; a torn entry is ignored rather than fatal', async () => {
    const state = new UploadState(path.join(dir, 'uploads'));
    const entry = {
      fingerprint: 'a'.repeat(64),
      file: '/f',
      size: 3,
      mtimeMs: 1,
      server: 'http://a/files/',
      protocol: 'tus' as const,
      uploadUrl: 'http://a/files/1',
      createdAt: new Date().toISOString(),
    };
    await state.save(entry);
    expect(await state.load(entry.fingerprint)).toEqual(entry);
    await state.forget(entry.fingerprint);
    expect(await state.load(entry.fingerprint)).toBeUndefined();
    await writeFile(path.join(dir, 'uploads', `${'b'.repeat(64)}.json`), '{"fingerprint": "bbb');
    expect(await state.load('b'.repeat(64))).toBeUndefined();
  });

  test('a directory is not an upload', async () => {
    await expect(localFile(dir)).rejects.toThrow(/not a regular file/);
  });
});

describe('endpoints', () => {
  test("Freight's base URL gets /files/ for tus; a URL with a path is a tus server's creation URL as given", () => {
    expect(endpoints(new URL('http://h:1080'))).toEqual({
      server: 'http://h:1080',
      tusEndpoint: 'http://h:1080/files/',
    });
    expect(endpoints(new URL('https://tusd.example/files/'))).toEqual({
      server: 'https://tusd.example/files',
      tusEndpoint: 'https://tusd.example/files/',
    });
  });
});

describe('progress lines', () => {
  test('bytes, percent, speed over the last seconds, and time left', () => {
    const file = new FileProgress('big.iso', 100 * 1024 * 1024);
    file.state = 'uploading';
    file.update(0, 1_000);
    file.update(50 * 1024 * 1024, 6_000);
    expect(progressLine(file, false, 6_000)).toBe('big.iso   50%  50 MiB / 100 MiB  10 MiB/s  ETA 00:05');
    expect(progressLine(file, true, 6_000)).toBe(
      'big.iso  [############------------]  50%  50 MiB / 100 MiB  10 MiB/s  ETA 00:05',
    );
    file.state = 'interrupted';
    file.note = 'run the same command again to resume';
    expect(progressLine(file, false, 6_000)).toBe(
      'big.iso   50%  50 MiB / 100 MiB  interrupted: run the same command again to resume',
    );
  });

  test('durations', () => {
    expect(formatDuration(undefined)).toBe('--:--');
    expect(formatDuration(65)).toBe('01:05');
    expect(formatDuration(3 * 3600 + 61)).toBe('3:01:01');
  });
});
