import { describe, expect, test } from 'vitest';
import { GiB, MiB, TiB } from '../../src/config/units.js';
import { partCount, partSizeProblem, planPartSize, plannedPartSize } from '../../src/uploads/planner.js';

const PREFERRED = 8 * MiB;

describe('part planner: max(S3_PART_SIZE, ceil(length / 10,000))', () => {
  test.each([
    ['1 B', 1, PREFERRED, 1],
    ['5 MiB', 5 * MiB, PREFERRED, 1],
    // 78 GiB / 10,000 is just under 8 MiB: the preferred size still fits, in 9,984 parts.
    ['78 GiB', 78 * GiB, PREFERRED, 9984],
    ['1 TiB', 1 * TiB, Math.ceil(TiB / 10_000), 10_000],
    ['exactly 5 TiB', 5 * TiB, Math.ceil((5 * TiB) / 10_000), 10_000],
  ])('%s', (_name, length, expectedSize, expectedParts) => {
    const size = planPartSize(length, PREFERRED);
    expect(size).toBe(expectedSize);
    expect(partCount(length, size)).toBe(expectedParts);
    // S3's rules: at most 10,000 parts, every part 5 MiB..5 GiB, the last one no larger than the others.
    expect(partCount(length, size)).toBeLessThanOrEqual(10_000);
    expect(size).toBeGreaterThanOrEqual(5 * MiB);
    expect(size).toBeLessThanOrEqual(5 * GiB);
    const last = plannedPartSize(length, size, partCount(length, size));
    expect(last).toBeGreaterThan(0);
    expect(last).toBeLessThanOrEqual(size);
    expect(size * (partCount(length, size) - 1) + last).toBe(length);
  });

  test('5 TiB plans parts of about 524 MiB', () => {
    expect(planPartSize(5 * TiB, PREFERRED)).toBe(549_755_814);
  });

  test('never below the 5 MiB minimum, whatever is preferred', () => {
    expect(planPartSize(100, 1024)).toBe(5 * MiB);
  });

  test('refuses lengths beyond 5 TiB and negative ones', () => {
    expect(() => planPartSize(5 * TiB + 1, PREFERRED)).toThrow(/maximum object size/);
    expect(() => planPartSize(-1, PREFERRED)).toThrow(RangeError);
  });

  test('a zero-byte upload is one empty part', () => {
    expect(partCount(0, PREFERRED)).toBe(1);
    expect(plannedPartSize(0, PREFERRED, 1)).toBe(0);
  });

  test('a part size a client asks for is checked against S3 limits and the 10,000-part cap', () => {
    expect(partSizeProblem(100 * MiB, 5 * MiB)).toBeUndefined();
    expect(partSizeProblem(100 * MiB, 5 * MiB - 1)).toMatch(/at least/);
    expect(partSizeProblem(100 * MiB, 5 * GiB + 1)).toMatch(/at most/);
    expect(partSizeProblem(TiB, 5 * MiB)).toMatch(/would need 209716 parts/);
  });
});
