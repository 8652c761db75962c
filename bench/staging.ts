/**
 * Why Freight joins a part inside S3 rather than re-uploading it: the two ways of building one S3 part of P bytes
 * from PATCHes of c bytes, measured straight against the gateway with the AWS SDK (no Freight in between):
 *
 * - re-upload: after each piece, the bytes staged so far are read back and PUT again together with the new piece
 *   as one object (how a store without server-side copy keeps a growing part); the last time, as the real part.
 * - staging: each piece is a part of a staging multipart upload; when the part is full the staging upload is
 *   completed and S3 copies it into the real upload (UploadPartCopy). What Freight does.
 *
 * The client reaches the gateway through a counting relay: bytes it sent, bytes it read back, and the time from the
 * first piece to the part stored in the real upload; and the gateway's CPU, which does the copy.
 */
import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { s3ClientFor, type S3Settings } from '../scripts/services.js';
import { deleteObject, storedObject } from './contenders.js';
import { startCountingRelay } from './counting-relay.js';
import { collectGarbage, gatewayCpu } from './gateway.js';
import { log } from './log.js';
import { MiB, formatSize, median } from './numbers.js';

export type StagingMethod = 're-upload' | 'staging';

/** 256 MiB parts (those of an upload of about 2.5 TiB) from 32 MiB PATCHes; 80 MiB parts from the smallest pieces S3 takes. */
export const STAGING_PAIRS = [
  { partSize: 256 * MiB, pieceSize: 32 * MiB },
  { partSize: 80 * MiB, pieceSize: 5 * MiB },
];

export interface StagingRun {
  method: StagingMethod;
  partSize: number;
  pieceSize: number;
  round: number;
  seconds: number;
  /** Through the relay: client to gateway, and back. */
  sent: number;
  received: number;
  requests: number;
  gatewayCpuSeconds: number | null;
  /** The completed object holds the part's size. */
  sizeOk: boolean;
}

export interface StagingResult {
  runs: StagingRun[];
}

export async function measureStaging(s3: S3Settings, bucket: string, rounds: number): Promise<StagingResult> {
  const relay = await startCountingRelay(s3.endpoint);
  const client = s3ClientFor({ ...s3, endpoint: relay.url });
  let requests = 0;
  client.middlewareStack.add(
    (next) => (args) => {
      requests++;
      return next(args);
    },
    { step: 'finalizeRequest' },
  );
  const runs: StagingRun[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const { partSize, pieceSize } of STAGING_PAIRS) {
        const pieces = makePieces(partSize, pieceSize);
        for (const method of ['re-upload', 'staging'] as const) {
          const key = `staging-bench-${method}-${Date.now()}`;
          const { UploadId: uploadId } = await client.send(
            new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }),
          );
          relay.reset();
          requests = 0;
          const gateway0 = await gatewayCpu(s3);
          const started = performance.now();
          const build = method === 're-upload' ? reupload : stage;
          const etag = await build(client, bucket, key, uploadId!, pieces);
          const seconds = (performance.now() - started) / 1000;
          const gateway1 = await gatewayCpu(s3);
          const counts = relay.counts();
          const run: StagingRun = {
            method,
            partSize,
            pieceSize,
            round,
            seconds,
            sent: counts.toS3,
            received: counts.fromS3,
            requests,
            gatewayCpuSeconds: gateway0 === null || gateway1 === null ? null : gateway1 - gateway0,
            sizeOk: false,
          };
          await client.send(
            new CompleteMultipartUploadCommand({
              Bucket: bucket,
              Key: key,
              UploadId: uploadId,
              MultipartUpload: { Parts: [{ PartNumber: 1, ETag: etag }] },
            }),
          );
          run.sizeOk = (await storedObject(s3, bucket, key)).size === partSize;
          await deleteObject(s3, bucket, key);
          await deleteObject(s3, bucket, stagedKey(key));
          runs.push(run);
          log(
            `staging: ${formatSize(partSize)} part from ${formatSize(pieceSize)} pieces by ${method}: ${seconds.toFixed(2)} s, ` +
              `${(run.sent / MiB).toFixed(0)} MiB sent, ${(run.received / MiB).toFixed(0)} MiB read back` +
              (run.sizeOk ? '' : ', OBJECT SIZE WRONG'),
          );
        }
      }
      await collectGarbage(s3);
    }
  } finally {
    client.destroy();
    await relay.close();
  }
  return { runs };
}

const stagedKey = (key: string) => `${key}.staging/part-1`;

/** The part's pieces: random bytes, each piece stamped with its index. */
function makePieces(partSize: number, pieceSize: number): Buffer[] {
  const base = randomBytes(pieceSize);
  return Array.from({ length: partSize / pieceSize }, (_, index) => {
    const piece = Buffer.from(base);
    piece.writeUInt32BE(index, 0);
    return piece;
  });
}

/** Re-upload: the staged object grows by one piece per PATCH, read back and sent again each time. */
async function reupload(
  client: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
  pieces: Buffer[],
): Promise<string> {
  const staged = stagedKey(key);
  for (let i = 0; i < pieces.length; i++) {
    let body = pieces[i]!;
    if (i > 0) {
      const read = await client.send(new GetObjectCommand({ Bucket: bucket, Key: staged }));
      body = Buffer.concat([Buffer.from(await read.Body!.transformToByteArray()), body]);
    }
    if (i < pieces.length - 1) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: staged, Body: body }));
    } else {
      const part = await client.send(
        new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: 1, Body: body }),
      );
      return part.ETag!;
    }
  }
  throw new Error('no pieces');
}

/** Staging: each piece a part of a staging upload; completed, then copied into the real upload by S3. */
async function stage(
  client: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
  pieces: Buffer[],
): Promise<string> {
  const staged = stagedKey(key);
  const { UploadId: stagingId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: staged }));
  try {
    const parts = [];
    for (let i = 0; i < pieces.length; i++) {
      const part = await client.send(
        new UploadPartCommand({ Bucket: bucket, Key: staged, UploadId: stagingId, PartNumber: i + 1, Body: pieces[i] }),
      );
      parts.push({ PartNumber: i + 1, ETag: part.ETag });
    }
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: staged,
        UploadId: stagingId,
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch (error) {
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: staged, UploadId: stagingId }))
      .catch(() => {});
    throw error;
  }
  const copied = await client.send(
    new UploadPartCopyCommand({
      Bucket: bucket,
      Key: key,
      UploadId: uploadId,
      PartNumber: 1,
      CopySource: `${bucket}/${encodeURIComponent(staged)}`,
    }),
  );
  return copied.CopyPartResult!.ETag!;
}

interface StagingRow {
  partSize: number;
  pieceSize: number;
  method: StagingMethod;
  seconds: number;
  sent: number;
  received: number;
  requests: number;
  gatewayCpuSeconds: number | null;
  sizesOk: boolean;
}

/** Medians of the rounds, per pair and method. */
export function stagingRows(result: StagingResult): StagingRow[] {
  const rows: StagingRow[] = [];
  for (const { partSize, pieceSize } of STAGING_PAIRS) {
    for (const method of ['re-upload', 'staging'] as const) {
      const runs = result.runs.filter(
        (run) => run.partSize === partSize && run.pieceSize === pieceSize && run.method === method,
      );
      if (runs.length === 0) continue;
      const gateway = runs.map((run) => run.gatewayCpuSeconds).filter((value): value is number => value !== null);
      rows.push({
        partSize,
        pieceSize,
        method,
        seconds: median(runs.map((run) => run.seconds)),
        sent: median(runs.map((run) => run.sent)),
        received: median(runs.map((run) => run.received)),
        requests: median(runs.map((run) => run.requests)),
        gatewayCpuSeconds: gateway.length ? median(gateway) : null,
        sizesOk: runs.every((run) => run.sizeOk),
      });
    }
  }
  return rows;
}

export function stagingTable(result: StagingResult): string[] {
  const rounds = Math.max(0, ...result.runs.map((run) => run.round));
  return [
    `| part from pieces | method | sent by the client | read back | time per part (median of ${rounds}) | requests | gateway CPU s | object |`,
    '|---|---|---:|---:|---:|---:|---:|---|',
    ...stagingRows(result).map(
      (row) =>
        `| ${formatSize(row.partSize)} from ${row.partSize / row.pieceSize} × ${formatSize(row.pieceSize)} | ${row.method} | ` +
        `${(row.sent / MiB).toFixed(0)} MiB (${(row.sent / row.partSize).toFixed(2)}×) | ${(row.received / MiB).toFixed(0)} MiB | ` +
        `${row.seconds.toFixed(2)} s | ${row.requests} | ${row.gatewayCpuSeconds === null ? '—' : row.gatewayCpuSeconds.toFixed(2)} | ` +
        `${row.sizesOk ? 'size right' : '**wrong size**'} |`,
    ),
    '',
  ];
}

export function stagingSection(result: StagingResult): string[] {
  return [
    '## Staging and copying a part, or re-uploading it',
    '',
    'Why the tus store joins a part inside S3: one S3 part of P bytes built from PATCHes of c bytes, two ways, straight',
    'against the gateway with the AWS SDK, no Freight (`bench/staging.ts`). **re-upload**: after each piece the bytes',
    'staged so far are read back and PUT again with the new piece as one object (how a store without server-side copy',
    'keeps a growing part), the last time as the real part. **staging**: each piece is a part of a staging multipart',
    'upload, completed when the part is full and copied into the real upload by the gateway (UploadPartCopy), as',
    'Freight does. Bytes are counted by a relay between the client and the gateway (HTTP headers included); time runs',
    "from the first piece to the part stored in the real upload; the gateway's CPU includes the copy.",
    '',
    ...stagingTable(result),
  ];
}
