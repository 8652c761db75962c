/**
 * What one PATCH costs the database: the PATCH in the middle of an upload reads its row once (with the lock
 * already held), moves the offset with one guarded statement, and nothing else; the resume check is one query.
 * Counted from Freight's own /metrics (every repository call is timed there, by name).
 */
import { describe, expect, test } from 'vitest';
import { freightOnS3, MiB, randomData, tokenFor, uniqueUser } from '../helpers/harness.js';
import { scrape, type Scrape } from '../helpers/metrics.js';

const setup = freightOnS3('trips', { S3_PART_SIZE: '5MiB' });

/** Repository calls by name between two scrapes (0s left out). */
function callsBetween(before: Scrape, after: Scrape, names: readonly string[]): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const query of names) {
    const n =
      after('freight_db_query_duration_seconds_count', { query }) -
      before('freight_db_query_duration_seconds_count', { query });
    if (n > 0) calls[query] = n;
  }
  return calls;
}

const QUERIES = [
  'findUpload',
  'findOwnedUpload',
  'findOwnedUploadProbingWriter',
  'advanceStoredOffset',
  'transition',
  'setOnce',
  'recordProgress',
  'listParts',
  'upsertParts',
  'lockForCompletion',
  'extendExpiry',
] as const;

describe('database round trips', () => {
  test('a mid-upload PATCH reads its row once and moves the offset once; a HEAD is one query', async () => {
    const { url } = setup.freight;
    const token = await tokenFor(uniqueUser('trips'));
    const auth = { Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0' };
    const created = await fetch(`${url}/files/`, {
      method: 'POST',
      headers: { ...auth, 'Upload-Length': String(12 * MiB) },
    });
    expect(created.status).toBe(201);
    const location = new URL(created.headers.get('location') ?? '', url).toString();
    const data = randomData(12 * MiB);
    const patch = (from: number, to: number) =>
      fetch(location, {
        method: 'PATCH',
        headers: { ...auth, 'Upload-Offset': String(from), 'Content-Type': 'application/offset+octet-stream' },
        body: data.subarray(from, to),
      });

    expect((await patch(0, 6 * MiB)).status).toBe(204);
    const before = await scrape(url);
    expect((await patch(6 * MiB, 8 * MiB)).status).toBe(204);
    const afterPatch = await scrape(url);
    expect(callsBetween(before, afterPatch, QUERIES)).toEqual({ findOwnedUpload: 1, advanceStoredOffset: 1 });

    const head = await fetch(location, { method: 'HEAD', headers: auth });
    expect(head.headers.get('upload-offset')).toBe(String(8 * MiB));
    const afterHead = await scrape(url);
    expect(callsBetween(afterPatch, afterHead, QUERIES)).toEqual({ findOwnedUploadProbingWriter: 1 });
  });
});
