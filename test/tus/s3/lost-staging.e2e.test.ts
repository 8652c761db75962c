/**
 * Staged segments that S3 no longer holds as recorded. With 8 MiB parts a PATCH of 6 MiB leaves part 1's start
 * as a segment of that part's staging multipart upload; then the staging upload goes behind Freight's back:
 * aborted (a lifecycle rule, an operator), or completed by a join that was never recorded (consumed). Whatever
 * the next PATCH is, the offset and the running SHA-256 go back to what S3 holds (the start of the part), the
 * PATCH is answered 409, and tus-js-client (retrying on its schedule: HEAD, then the bytes from that offset)
 * finishes the upload byte-identical with the right SHA-256 recorded. Never a 500, never a 204 over lost bytes.
 * Freight on the test S3 gateway and PostgreSQL.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  ListMultipartUploadsCommand,
} from '@aws-sdk/client-s3';
import { describe, expect, test } from 'vitest';
import { stagingKey } from '../../../src/tus/s3/layout.js';
import {
  errorCodeOf,
  freightOnS3,
  listAllParts,
  MiB,
  randomData,
  sha256,
  sha256OfObject,
  tokenFor,
  uniqueUser,
} from '../../helpers/harness.js';
import { createRawUpload, startTusUpload } from '../../helpers/tus-client.js';
import { leftoversOf, storedUpload } from './stored-state.js';

const ctx = freightOnS3('freight-lost-staging', { S3_PART_SIZE: '8MiB' });
const TUS = { 'Tus-Resumable': '1.0.0' };

type Loss = 'aborted' | 'consumed';

/** The staging upload of part 1 goes behind Freight's back, as `loss` says. */
async function loseStaging(id: string, loss: Loss): Promise<void> {
  const { staging } = await storedUpload(ctx.sql, id);
  expect(staging?.uploadId).toBeTruthy();
  const key = stagingKey(id, staging!.partNumber);
  const Bucket = ctx.bucket.bucket;
  if (loss === 'aborted') {
    await ctx.s3.send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: staging!.uploadId! }));
  } else {
    // A join that completed the staging upload and then failed before it was recorded.
    const parts = await listAllParts(ctx.s3, Bucket, key, staging!.uploadId!);
    await ctx.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key: key,
        UploadId: staging!.uploadId!,
        MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.PartNumber, ETag: part.ETag })) },
      }),
    );
  }
  const open = await ctx.s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: key }));
  expect(open.Uploads ?? []).toEqual([]);
}

/** tus-js-client, resuming `url` with its default retry schedule shortened; the statuses it was answered. */
async function finishWithTusJsClient(url: string, data: Buffer<ArrayBuffer>, token: string) {
  const statuses: Array<{ method: string; status: number }> = [];
  const run = startTusUpload(data, {
    uploadUrl: url,
    headers: { Authorization: `Bearer ${token}` },
    retryDelays: [0, 200, 500],
    onAfterResponse: (req, res) => {
      statuses.push({ method: req.getMethod(), status: res.getStatus() });
    },
  });
  await run.done;
  return statuses;
}

async function expectExactUpload(id: string, data: Buffer): Promise<void> {
  const stored = await sha256OfObject(ctx.s3, ctx.bucket.bucket, id);
  expect(stored).toBe(sha256(data));
  const [row] = await ctx.sql`select status, sha256 from file_uploads where id = ${id}`;
  expect(row).toMatchObject({ status: 'completed', sha256: stored });
  expect(await leftoversOf(ctx.s3, ctx.bucket.bucket, id)).toEqual({ objects: [], openUploads: [] });
}

describe.each<Loss>(['aborted', 'consumed'])('a staging upload %s behind Freight’s back', (loss) => {
  test('a short PATCH after it is 409 and HEAD says 0, not 204 over bytes S3 no longer has; tus-js-client then finishes byte-identical with the right SHA-256', async () => {
    const token = await tokenFor(uniqueUser(`short-${loss}`));
    const headers = { Authorization: `Bearer ${token}` };
    const data = randomData(20 * MiB + 5);
    const upload = await createRawUpload(ctx.freight.url, headers, data);
    expect((await upload.patch(0, 6 * MiB)).status).toBe(204);
    await loseStaging(upload.id, loss);

    // 1 MiB more stays inside part 1: it would be staged as a tail behind the lost segment.
    const short = await upload.patch(6 * MiB, 7 * MiB);
    expect(short.status).toBe(409);
    expect(await errorCodeOf(short)).toBe('ERR_UPLOAD_CONFLICT');
    const head = await fetch(upload.url, { method: 'HEAD', headers: { ...TUS, ...headers } });
    expect(head.headers.get('upload-offset')).toBe('0');
    const stored = await storedUpload(ctx.sql, upload.id);
    expect(stored).toMatchObject({ storedOffset: 0, staging: null });

    const statuses = await finishWithTusJsClient(upload.url, data, token);
    expect(statuses.filter(({ status }) => status >= 500)).toEqual([]);
    await expectExactUpload(upload.id, data);
  });

  test('tus-js-client resuming with a PATCH that fills the part is answered 409 once (never 500), resumes from 0 and finishes byte-identical with the right SHA-256', async () => {
    const token = await tokenFor(uniqueUser(`fill-${loss}`));
    const data = randomData(20 * MiB + 5);
    const upload = await createRawUpload(ctx.freight.url, { Authorization: `Bearer ${token}` }, data);
    expect((await upload.patch(0, 6 * MiB)).status).toBe(204);
    await loseStaging(upload.id, loss);

    const statuses = await finishWithTusJsClient(upload.url, data, token);
    // HEAD (6 MiB), the PATCH from there (409: the segment is gone, the offset went back), HEAD (0), the PATCH of
    // everything.
    expect(statuses).toEqual([
      { method: 'HEAD', status: 200 },
      { method: 'PATCH', status: 409 },
      { method: 'HEAD', status: 200 },
      { method: 'PATCH', status: 204 },
    ]);
    await expectExactUpload(upload.id, data);
  });
});

describe.each<Loss>(['aborted', 'consumed'])('completion over a staging upload %s behind Freight’s back', (loss) => {
  test('declaring the length at the staged offset never answers 500 or completes other bytes: the upload ends byte-identical with the right SHA-256', async () => {
    const token = await tokenFor(uniqueUser(`seal-${loss}`));
    const headers = { ...TUS, Authorization: `Bearer ${token}` };
    const data = randomData(6 * MiB);
    const created = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...headers, 'Upload-Defer-Length': '1' },
    });
    const url = created.headers.get('location')!;
    const id = url.split('/').pop()!;
    const patch = (offset: number, body: Buffer<ArrayBuffer>, extra: Record<string, string> = {}) =>
      fetch(url, {
        method: 'PATCH',
        headers: {
          ...headers,
          ...extra,
          'Upload-Offset': String(offset),
          'Content-Type': 'application/offset+octet-stream',
        },
        body,
      });
    expect((await patch(0, data)).status).toBe(204);
    await loseStaging(id, loss);

    // Nothing new: the length is the offset stored, so the staged segment must become the upload's only part.
    const sealed = await patch(6 * MiB, Buffer.alloc(0) as Buffer<ArrayBuffer>, {
      'Upload-Length': String(data.length),
    });
    const answer = await sealed.text();
    expect(sealed.status, answer).not.toBeGreaterThanOrEqual(500);
    if (sealed.status === 409) {
      // The segment is not what S3 holds: back to 0, and tus-js-client sends it again.
      const head = await fetch(url, { method: 'HEAD', headers });
      expect(head.headers.get('upload-offset')).toBe('0');
      const statuses = await finishWithTusJsClient(url, data, token);
      expect(statuses.filter(({ status }) => status >= 500)).toEqual([]);
    } else {
      expect(sealed.status).toBe(204);
    }
    await expectExactUpload(id, data);
  });
});
