/** Which upload a key the janitor lists belongs to, found by key (keys.ts). */
import { describe, expect, test } from 'vitest';
import { multipartKeyOwner, namedByFreight, stagedObjectOwner } from '../../src/janitor/keys.js';

const ID = '0b8f2c1e-5d4a-4e7b-9c3f-1a2b3c4d5e6f';

describe('the owner of a listed key', () => {
  test('a multipart upload: its own key, or the staging upload of part n of one', () => {
    expect(multipartKeyOwner(ID)).toEqual({ key: ID });
    expect(multipartKeyOwner(`uploads/reports/q1.pdf`)).toEqual({ key: 'uploads/reports/q1.pdf' });
    expect(multipartKeyOwner(`uploads/a/b.bin.staging/part-12`)).toEqual({ key: 'uploads/a/b.bin', stagingPart: 12 });
    expect(multipartKeyOwner(`${ID}.staging/part-3`)).toEqual({ key: ID, stagingPart: 3 });
    // Not a name Freight gives a multipart upload under staging.
    expect(multipartKeyOwner(`${ID}.staging/tail-0-5`)).toBeUndefined();
    expect(multipartKeyOwner(`${ID}.staging/part-0`)).toBeUndefined();
  });

  test('a staged object: the key before `.staging/`; an upload’s own object is none', () => {
    expect(stagedObjectOwner(`uploads/a/b.bin.staging/tail-0-5`)).toBe('uploads/a/b.bin');
    expect(stagedObjectOwner(`${ID}.staging/part-1`)).toBe(ID);
    expect(stagedObjectOwner('uploads/a/b.bin')).toBeUndefined();
    expect(stagedObjectOwner('.staging/x')).toBeUndefined();
  });

  test('named by Freight: the prefix, then an upload id, and nothing else', () => {
    expect(namedByFreight(ID, '')).toBe(true);
    expect(namedByFreight(`uploads/${ID}`, 'uploads/')).toBe(true);
    expect(namedByFreight(ID, 'uploads/')).toBe(false);
    expect(namedByFreight(`uploads/${ID}.bin`, 'uploads/')).toBe(false);
    expect(namedByFreight('uploads/foreign.bin', 'uploads/')).toBe(false);
    expect(namedByFreight(`other/${ID}`, '')).toBe(false);
  });
});
