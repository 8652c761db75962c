/**
 * A piece's part file counts against the process's temp-disk budget from its first write until it is released,
 * and it takes no part slot: buffering a client's bytes never holds one.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import { Piece } from '../../../src/tus/s3/piece.js';
import { PartSlots } from '../../../src/tus/s3/slots.js';

test('bytes on temp disk are counted while the piece has its file, without a slot, and no longer once it is released', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'freight-piece-'));
  try {
    const slots = new PartSlots(2);
    const piece = new Piece(1, 0, { dir, slots });
    await piece.append(Buffer.alloc(100 * 1024));
    // Still in memory: no file.
    expect([slots.inUse, slots.tempBytes]).toEqual([0, 0]);
    await piece.append(Buffer.alloc(200 * 1024));
    expect([slots.inUse, slots.tempBytes]).toEqual([0, 300 * 1024]);
    await piece.append(Buffer.alloc(5));
    await piece.seal();
    expect([slots.inUse, slots.tempBytes]).toEqual([0, 300 * 1024 + 5]);
    await piece.release();
    expect([slots.inUse, slots.tempBytes]).toEqual([0, 0]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a piece that would pass TEMP_DISK_LIMIT fails with 507 and Retry-After, and what it had counted is given back', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'freight-piece-'));
  try {
    const slots = new PartSlots(2, 1024 * 1024);
    const first = new Piece(1, 0, { dir, slots });
    await first.append(Buffer.alloc(768 * 1024));
    const second = new Piece(1, 0, { dir, slots });
    await expect(second.append(Buffer.alloc(512 * 1024))).rejects.toMatchObject({
      code: 'ERR_INSUFFICIENT_STORAGE',
      status: 507,
      headers: { 'Retry-After': expect.any(String) },
    });
    await second.release();
    expect(slots.tempBytes).toBe(768 * 1024);
    await first.release();
    expect(slots.tempBytes).toBe(0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
