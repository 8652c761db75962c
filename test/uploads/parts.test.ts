import { describe, expect, test } from 'vitest';
import { MiB } from '../../src/config/units.js';
import { checkParts, describePartProblems, normalizeEtag } from '../../src/uploads/parts.js';

const part = (partNumber: number, size = 5 * MiB, etag = `"etag-${partNumber}"`) => ({ partNumber, size, etag });

describe('parts check before an upload is assembled', () => {
  test('contiguous parts that add up to the length pass, in order', () => {
    const report = checkParts({
      totalSize: 10 * MiB + 1,
      stored: [part(2, 5 * MiB), part(3, 1), part(1)],
      expected: [],
    });
    expect(report.problems).toEqual([]);
    expect(report.parts.map((p) => p.partNumber)).toEqual([1, 2, 3]);
    expect(report.storedBytes).toBe(10 * MiB + 1);
  });

  test('a gap is reported as a missing part', () => {
    const report = checkParts({ totalSize: 15 * MiB, stored: [part(1), part(3)], expected: [] });
    expect(report.problems).toEqual([{ partNumber: 2, problem: 'missing' }]);
    expect(report.parts).toEqual([]);
  });

  test('a planned part S3 does not hold is missing; a planned size that differs is wrong', () => {
    const report = checkParts({
      totalSize: 15 * MiB,
      stored: [part(1), part(2, 4 * MiB)],
      expected: [
        { partNumber: 1, size: 5 * MiB },
        { partNumber: 2, size: 5 * MiB },
        { partNumber: 3, size: 5 * MiB },
      ],
      partCount: 3,
    });
    expect(report.problems).toEqual([
      { partNumber: 2, problem: 'wrong_size', expected: 5 * MiB, actual: 4 * MiB },
      { partNumber: 3, problem: 'missing' },
    ]);
    expect(describePartProblems(report.problems)).toBe(
      `missing parts 3; part 2: ${4 * MiB} bytes in storage, ${5 * MiB} expected`,
    );
  });

  test('an ETag that differs from the one the uploader saw is reported; quotes do not matter', () => {
    const report = checkParts({
      totalSize: 10 * MiB,
      stored: [part(1, 5 * MiB, '"aaa"'), part(2, 5 * MiB, '"bbb"')],
      expected: [
        { partNumber: 1, etag: 'aaa' },
        { partNumber: 2, etag: '"ccc"' },
      ],
    });
    expect(report.problems).toEqual([{ partNumber: 2, problem: 'wrong_etag', expected: '"ccc"', actual: '"bbb"' }]);
  });

  test('parts below 5 MiB other than the last are refused before S3 would', () => {
    const report = checkParts({ totalSize: 6 * MiB, stored: [part(1, MiB), part(2, 5 * MiB)], expected: [] });
    expect(report.problems).toEqual([{ partNumber: 1, problem: 'too_small', actual: MiB }]);
  });

  test('parts beyond the plan are unexpected', () => {
    const report = checkParts({ totalSize: 5 * MiB, stored: [part(1), part(2, 1)], expected: [], partCount: 1 });
    expect(report.problems).toEqual([{ partNumber: 2, problem: 'unexpected' }]);
  });

  test('parts that do not add up to the length are refused', () => {
    const report = checkParts({ totalSize: 11 * MiB, stored: [part(1), part(2)], expected: [] });
    expect(report.problems).toEqual([{ partNumber: 0, problem: 'wrong_total', expected: 11 * MiB, actual: 10 * MiB }]);
  });

  test('no parts at all is a missing first part', () => {
    expect(checkParts({ totalSize: 1, stored: [], expected: [] }).problems).toEqual([
      { partNumber: 1, problem: 'missing' },
    ]);
  });

  test('ETags compare without quotes or weak markers', () => {
    expect(normalizeEtag('W/"abc"')).toBe('abc');
    expect(normalizeEtag('abc')).toBe('abc');
  });
});
