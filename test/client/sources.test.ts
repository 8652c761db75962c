import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { bufferSource, fileSource, streamSource } from '../../src/client/sources.js';

const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

describe('part sources', () => {
  test('a file is read by range', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'freight-source-'));
    try {
      const file = path.join(dir, 'f');
      await writeFile(file, data);
      const source = await fileSource(file);
      expect(source.size).toBe(1000);
      expect(Buffer.from(await source.read(990, 1000))).toEqual(data.subarray(990));
      expect(Buffer.from(await source.read(0, 10))).toEqual(data.subarray(0, 10));
      await source.close?.();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a buffer is sliced', async () => {
    expect(Buffer.from(await bufferSource(data).read(5, 15))).toEqual(data.subarray(5, 15));
  });

  test('a stream is read front to back, skipping parts already uploaded, whatever its chunking', async () => {
    const chunks = [data.subarray(0, 7), data.subarray(7, 300), data.subarray(300, 301), data.subarray(301)];
    const source = streamSource(Readable.from(chunks), 1000);
    const [a, b] = await Promise.all([source.read(100, 200), source.read(200, 300)]);
    expect(Buffer.from(a)).toEqual(data.subarray(100, 200));
    expect(Buffer.from(b)).toEqual(data.subarray(200, 300));
    expect(Buffer.from(await source.read(600, 1000))).toEqual(data.subarray(600));
    await expect(source.read(0, 10)).rejects.toThrow(/already consumed/);
  });

  test('a stream shorter than announced is an error', async () => {
    const source = streamSource(Readable.from([data.subarray(0, 10)]), 1000);
    await expect(source.read(0, 20)).rejects.toThrow(/ended at byte 10/);
  });
});
