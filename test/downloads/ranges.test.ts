/** Which bytes a Range header asks for, RFC 9110 §14. */
import { describe, expect, test } from 'vitest';
import { rangeOf } from '../../src/downloads/ranges.js';

describe('rangeOf', () => {
  test.each([
    ['bytes=0-0', { kind: 'part', range: { start: 0, end: 0 } }],
    ['bytes=10-19', { kind: 'part', range: { start: 10, end: 19 } }],
    ['bytes=90-', { kind: 'part', range: { start: 90, end: 99 } }],
    ['bytes=90-1000', { kind: 'part', range: { start: 90, end: 99 } }],
    ['bytes=-5', { kind: 'part', range: { start: 95, end: 99 } }],
    ['bytes=-500', { kind: 'part', range: { start: 0, end: 99 } }],
    ['bytes=100-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    // several ranges, garbage, other units, reversed: ignored, the whole file
    ['bytes=0-1,5-6', { kind: 'whole' }],
    ['bytes=abc', { kind: 'whole' }],
    ['items=0-1', { kind: 'whole' }],
    ['bytes=9-3', { kind: 'whole' }],
    ['bytes=-', { kind: 'whole' }],
  ])('%s of 100 bytes', (header, expected) => {
    expect(rangeOf(header, 100)).toEqual(expected);
  });

  test('no header: the whole file; an empty file has no satisfiable range', () => {
    expect(rangeOf(undefined, 100)).toEqual({ kind: 'whole' });
    expect(rangeOf('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(rangeOf('bytes=-1', 0)).toEqual({ kind: 'unsatisfiable' });
  });

  test("If-Range: the range only while the ETag is the file's", () => {
    expect(rangeOf('bytes=0-1', 10, { header: '"a"', etag: '"a"' })).toEqual({
      kind: 'part',
      range: { start: 0, end: 1 },
    });
    expect(rangeOf('bytes=0-1', 10, { header: '"b"', etag: '"a"' })).toEqual({ kind: 'whole' });
    expect(rangeOf('bytes=0-1', 10, { header: undefined, etag: '"a"' })).toEqual({
      kind: 'part',
      range: { start: 0, end: 1 },
    });
  });
});
