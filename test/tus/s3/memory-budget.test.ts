/**
 * The small-upload path's memory budget (src/tus/s3/whole.ts): bytes handed out first come, first served, never
 * more than its capacity; a waiter gives up when its signal aborts (the caller then takes the ordinary path).
 */
import { describe, expect, test } from 'vitest';
import { MemoryBudget } from '../../../src/tus/s3/whole.js';

const never = () => new AbortController().signal;

describe('the memory budget of whole uploads', () => {
  test('hands out at most its capacity, and the next in line gets memory as soon as it fits, in order', async () => {
    const budget = new MemoryBudget(10);
    const first = await budget.take(6, never());
    const second = await budget.take(4, never());
    expect(budget.inUse).toBe(10);
    const granted: string[] = [];
    const noted = (name: string) => (release: (() => void) | undefined) => {
      granted.push(name);
      return release;
    };
    const third = budget.take(5, never()).then(noted('third'));
    const fourth = budget.take(1, never()).then(noted('fourth'));
    await Promise.resolve();
    // The fourth would fit after the second goes, but waits its turn behind the third.
    expect(budget.waiting).toBe(2);
    second!();
    await Promise.resolve();
    expect(granted).toEqual([]);
    first!();
    expect(await third).toBeTypeOf('function');
    expect(await fourth).toBeTypeOf('function');
    expect(granted).toEqual(['third', 'fourth']);
    expect(budget.inUse).toBe(6);
    // A release is given back once, however often it is called.
    (await third)!();
    (await third)!();
    expect(budget.inUse).toBe(1);
  });

  test('a waiter whose signal aborts gets nothing and takes no memory; one larger than the budget never waits', async () => {
    const budget = new MemoryBudget(10);
    const held = await budget.take(8, never());
    const giveUp = new AbortController();
    const waiting = budget.take(5, giveUp.signal);
    const behind = budget.take(2, never());
    giveUp.abort();
    expect(await waiting).toBeUndefined();
    // With the one ahead of it gone, the next in line fits at once.
    expect(await behind).toBeTypeOf('function');
    expect(budget.inUse).toBe(10);
    expect(await budget.take(11, never())).toBeUndefined();
    held!();
    expect(budget.inUse).toBe(2);
    expect(budget.waiting).toBe(0);
  });
});
