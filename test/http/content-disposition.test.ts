import { describe, expect, test } from 'vitest';
import { attachment } from '../../src/http/content-disposition.js';

/** The exact name a browser recovers from filename* (RFC 8187). */
const decoded = (header: string) => decodeURIComponent(/filename\*=UTF-8''(.*)$/.exec(header)![1]!);

describe('Content-Disposition for any file name', () => {
  test.each([
    'report.pdf',
    'отчёт 2026.pdf',
    '報告.txt',
    'a\r\nSet-Cookie: x=1.txt',
    'quote"back\\slash%.bin',
    "it's (1).txt",
  ])('%j round-trips through filename* and leaves the header one safe line', (name) => {
    const header = attachment(name);
    expect(header).toMatch(/^attachment; filename="[\x20-\x7e]*"; filename\*=UTF-8''[A-Za-z0-9!#$&+\-.^_`|~%]*$/);
    expect(header).not.toMatch(/[\r\n]/);
    expect(decoded(header)).toBe(name);
  });

  test('no name: a plain attachment', () => {
    expect(attachment(null)).toBe('attachment');
  });
});
