/**
 * Staged bytes survive a crash. A PATCH that ends inside a part leaves that part's start staged in S3 (a tail
 * object under 5 MiB, or segments of a staging multipart upload) and recorded in PostgreSQL; after kill -9 and a
 * restart, the resume check reports that offset and a client resumes there, sending only the rest. Freight runs
 * as a real process (dist/src/server.js, as `npm start` runs it) on the test database and S3 gateway.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startServerProcess, type ServerProcess } from '../../helpers/faults.js';
import {
  createTestBucket,
  eventually,
  MiB,
  randomData,
  serviceEnv,
  sha256,
  sha256OfObject,
  testS3Client,
  testSql,
  tokenFor,
  uniqueUser,
} from '../../helpers/harness.js';
import { scrape } from '../../helpers/metrics.js';
import { pausingPatch, startTusUpload, uploadIdOf } from '../../helpers/tus-client.js';
import { expectStoredUpTo, stagedShape } from './stored-state.js';

const PART = 8 * MiB;

describe('kill -9 while the end of a part is staged', () => {
  const s3 = testS3Client();
  const sql = testSql();
  let bucket: Awaited<ReturnType<typeof createTestBucket>>;
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    bucket = await createTestBucket(s3, 'freight-crash');
  });
  afterAll(async () => {
    await server?.stop();
    await sql.end();
    await bucket?.drop();
    s3.destroy();
  });

  test('after kill -9 (one PATCH streaming) and a restart, uploads whose last PATCH ended in a tail or a segment report that offset, and tus-js-client resumes from it byte-identical', async () => {
    server = await startServerProcess(serviceEnv(bucket.bucket, { S3_PART_SIZE: '8MiB' }));
    const token = await tokenFor(uniqueUser('crash'));
    const headers = { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}` };
    const cases = [
      // part 1, then 2 MiB of part 2: a tail
      { data: randomData(20 * MiB + 11), sent: 10 * MiB, staged: { partNumber: 2, segments: [], tail: 2 * MiB } },
      // part 1, then 6 MiB of part 2: a segment
      { data: randomData(20 * MiB + 11), sent: 14 * MiB, staged: { partNumber: 2, segments: [6 * MiB], tail: null } },
      // as the first; its next PATCH is streaming (its tail read back) when the process dies
      { data: randomData(20 * MiB + 11), sent: 10 * MiB, staged: { partNumber: 2, segments: [], tail: 2 * MiB } },
    ];
    const uploads = [];
    for (const { data, sent, staged } of cases) {
      const created = await fetch(`${server.url}/files/`, {
        method: 'POST',
        headers: { ...headers, 'Upload-Length': String(data.length) },
      });
      const url = created.headers.get('location')!;
      const patched = await fetch(url, {
        method: 'PATCH',
        headers: { ...headers, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: data.subarray(0, sent),
      });
      expect(patched.status).toBe(204);
      expect(patched.headers.get('upload-offset')).toBe(String(sent));
      const stored = await expectStoredUpTo(sql, s3, bucket.bucket, uploadIdOf(url), sent);
      expect(stagedShape(stored.staging)).toEqual(staged);
      expect(stored.partSize).toBe(PART);
      uploads.push({ url, data, sent });
    }

    // The third upload's next PATCH: 3 MiB of its body are on their way (not enough to fill part 2) when the
    // process is killed.
    const inFlight = uploads[2]!;
    const running = server;
    const killed = pausingPatch(
      inFlight.url,
      { Authorization: `Bearer ${token}` },
      inFlight.sent,
      [inFlight.data.subarray(inFlight.sent, inFlight.sent + 3 * MiB), inFlight.data.subarray(inFlight.sent + 3 * MiB)],
      async (index) => {
        if (index !== 0) return;
        // Killed once the server is writing this PATCH (its body on the way), not before it has seen it.
        await eventually(async () =>
          (await scrape(running.url))('freight_tus_writes_in_progress') >= 1 ? true : undefined,
        );
        await running.kill('SIGKILL');
      },
    ).then(
      (answer) => answer,
      (error: unknown) => error,
    );
    expect(await killed).toBeInstanceOf(Error);
    expect(await server.exited).toBeNull();
    await server.restart();

    for (const { url, data, sent } of uploads) {
      const head = await fetch(url, { method: 'HEAD', headers });
      expect(head.status).toBe(200);
      expect(head.headers.get('upload-offset')).toBe(String(sent));

      const resumed = startTusUpload(data, { uploadUrl: url, headers: { Authorization: `Bearer ${token}` } });
      await resumed.done;
      const patches = resumed.requests.filter((request) => request.method === 'PATCH');
      expect(resumed.requests[0]?.method).toBe('HEAD');
      expect(patches[0]?.uploadOffset).toBe(String(sent));
      expect(Math.min(...resumed.progress)).toBeGreaterThanOrEqual(sent);

      const id = uploadIdOf(url);
      expect(await sha256OfObject(s3, bucket.bucket, id)).toBe(sha256(data));
      const done = await expectStoredUpTo(sql, s3, bucket.bucket, id, data.length);
      expect(done.status).toBe('completed');
      expect(done.parts.map((part) => part.size)).toEqual([PART, PART, data.length - 2 * PART]);
    }
  });
});
