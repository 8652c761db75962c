/** A piece's part file counts in its slots' temp bytes (GET /metrics) from its first write until it is released. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import { Piece } from '../../../src/tus/s3/piece.js';
import { PartSlots } from '../../../src/tus/s3/slots.js';

test('bytes on temp disk are counted while the piece holds its slot, and no longer once it is released', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'freight-piece-'));
  try {
    const slots = new PartSlots(2);
    const piece = new Piece(1, 0, { dir, slots, signal: new AbortController().signal });
    await piece.append(Buffer.alloc(100 * 1024));
    // Still in memory: no slot, no file.
    expect([slots.inUse, slots.tempBytes]).toEqual([0, 0]);
    await piece.append(Buffer.alloc(200 * 1024));
    expect([slots.inUse, slots.tempBytes]).toEqual([1, 300 * 1024]);
    await piece.append(Buffer.alloc(5));
    await piece.seal();
    expect(slots.tempBytes).toBe(300 * 1024 + 5);
    await piece.release();
    expect([slots.inUse, slots.tempBytes]).toEqual([0, 0]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
