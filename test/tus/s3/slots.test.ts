/**
 * The rules of part slots (src/tus/s3/slots.ts): a slot is taken only to send, waiters are served in order, a
 * wait ends when its request stops or its client goes away, and a free slot is taken whatever the signal says.
 */
import { describe, expect, test } from 'vitest';
import { PartSlots, SlotWaitEnded } from '../../../src/tus/s3/slots.js';

/** Settles `promise` into what it did so far, without waiting for it. */
async function stateOf(promise: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  const marker = Symbol('pending');
  try {
    const value = await Promise.race([promise, Promise.resolve(marker)]);
    return value === marker ? 'pending' : 'resolved';
  } catch {
    return 'rejected';
  }
}

describe('part slots', () => {
  test('at most `capacity` held at once; a release hands the slot to the first waiter, in order', async () => {
    const slots = new PartSlots(2);
    const a = await slots.acquire();
    await slots.acquire();
    expect([slots.inUse, slots.waiting]).toEqual([2, 0]);
    const order: string[] = [];
    const granted = (name: string) => (release: () => void) => {
      order.push(name);
      return release;
    };
    const third = slots.acquire().then(granted('third'));
    const fourth = slots.acquire().then(granted('fourth'));
    expect(slots.waiting).toBe(2);
    a();
    a(); // a second release of the same slot changes nothing
    await third;
    expect(await stateOf(fourth)).toBe('pending');
    expect([slots.inUse, slots.waiting, order]).toEqual([2, 1, ['third']]);
    (await third)();
    (await fourth)();
    expect(order).toEqual(['third', 'fourth']);
    expect(slots.inUse).toBe(1);
  });

  test('a wait ends with its signal (the request stopped, or its client went away): SlotWaitEnded, and it leaves the queue', async () => {
    const slots = new PartSlots(1);
    const held = await slots.acquire();
    const stop = new AbortController();
    const waiting = slots.acquire(stop.signal);
    const behind = slots.acquire();
    expect(slots.waiting).toBe(2);
    stop.abort(new Error('another request wants the upload'));
    await expect(waiting).rejects.toBeInstanceOf(SlotWaitEnded);
    expect(slots.waiting).toBe(1);
    // The slot goes to the waiter behind it, not to the one that left.
    held();
    (await behind)();
    expect(slots.inUse).toBe(0);
  });

  test('an aborted signal still takes a free slot at once (what arrived is stored), but never waits for one', async () => {
    const slots = new PartSlots(1);
    const stopped = AbortSignal.abort();
    const release = await slots.acquire(stopped);
    expect(slots.inUse).toBe(1);
    await expect(slots.acquire(stopped)).rejects.toBeInstanceOf(SlotWaitEnded);
    expect(slots.waiting).toBe(0);
    release();
  });

  test('sending() holds a slot only while the send runs, and gives it back when the send fails', async () => {
    const slots = new PartSlots(1);
    let during = -1;
    expect(
      await slots.sending(undefined, async () => {
        during = slots.inUse;
        return 'etag';
      }),
    ).toBe('etag');
    expect([during, slots.inUse]).toEqual([1, 0]);
    await expect(slots.sending(undefined, () => Promise.reject(new Error('S3 failed')))).rejects.toThrow('S3 failed');
    expect(slots.inUse).toBe(0);
  });

  test('temp disk: reserved up to the limit, a 507 past it with nothing counted, given back on release', () => {
    const slots = new PartSlots(1, 100);
    slots.reserveDisk(60);
    expect(() => slots.reserveDisk(41)).toThrow(/TEMP_DISK_LIMIT/);
    expect(slots.tempBytes).toBe(60);
    slots.reserveDisk(40);
    slots.releaseDisk(100);
    expect(slots.tempBytes).toBe(0);
  });
});
