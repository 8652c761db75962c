/** The tus data store: S3 multipart when S3_BUCKET is set, else files under DATA_DIR/files (like tusd's default). */
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { FileStore } from '@tus/file-store';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/index.js';
import type { Metrics } from '../ops/metrics.js';
import { S3MultipartStorage } from '../storage/multipart.js';
import { S3Objects } from '../storage/objects.js';
import type { UploadService } from '../uploads/service.js';
import { RecordedFileStore } from './file-store.js';
import { FreightS3Store } from './s3/store.js';
import { SEGMENT_FLOOR } from './s3/layout.js';
import { PartSlots } from './s3/slots.js';
import type { FreightStore } from './upload-record.js';

export interface TusStoreDeps {
  config: Config;
  uploads: UploadService;
  log: FastifyBaseLogger;
  /** This process's temp directory (part files). */
  tempDir: string;
  /** The S3 clients when config.s3 is set: one with the SDK's retries, one without (bodies from files). */
  s3?: { client: S3Client; bodyClient: S3Client } | undefined;
  /** Reads the part slots' counts at each scrape. */
  metrics?: Metrics | undefined;
}

export function createTusStore({ config, uploads, log, tempDir, s3, metrics }: TusStoreDeps): FreightStore {
  const stall = { minRate: config.minUploadRate, windowMs: config.stallTimeoutMs };
  if (config.s3 && s3) {
    // Slots bound the sends to S3; TEMP_DISK_LIMIT bounds the part files, which need no slot.
    const slots = new PartSlots(config.partConcurrency, config.tempDiskLimit);
    metrics?.watchPartSlots(slots);
    return new FreightS3Store({
      uploads,
      multipart: new S3MultipartStorage(s3.client, config.s3.bucket, config.s3.endpoint),
      objects: new S3Objects(s3.client, s3.bodyClient, config.s3.bucket),
      slots,
      tempDir,
      segmentSize: Math.max(config.partSize, SEGMENT_FLOOR),
      stall,
      hashing: config.sha256,
      log,
      expiryMs: config.uploadExpiryMs,
      tagging: config.s3.tagging,
      preferredPartSize: config.partSize,
      maxParts: config.maxParts,
      maxUploadSize: config.maxUploadSize,
    });
  }
  const files = new FileStore({
    directory: path.join(config.dataDir, 'files'),
    expirationPeriodInMilliseconds: config.uploadExpiryMs,
  });
  return new RecordedFileStore(files, uploads, log, stall, config.sha256);
}
