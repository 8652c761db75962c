/** The tus data store: S3 multipart when S3_BUCKET is set, else files under DATA_DIR/files (like tusd's default). */
import path from 'node:path';
import { FileStore } from '@tus/file-store';
import type { Config } from '../config/index.js';
import { s3ClientConfig } from '../storage/s3.js';
import type { UploadService } from '../uploads/service.js';
import { RecordingStore } from './recording-store.js';
import { FreightS3Store } from './s3-store.js';

export function createTusStore(config: Config, uploads: UploadService): RecordingStore {
  const inner = config.s3
    ? new FreightS3Store({
        uploads,
        maxUploadSize: config.maxUploadSize,
        partSize: config.partSize,
        // Each part in flight is one temp file of up to a part size: this bounds the temp disk of the process.
        maxConcurrentPartUploads: config.partConcurrency,
        expirationPeriodInMilliseconds: config.uploadExpiryMs,
        s3ClientConfig: { ...s3ClientConfig(config.s3), bucket: config.s3.bucket },
      })
    : new FileStore({
        directory: path.join(config.dataDir, 'files'),
        expirationPeriodInMilliseconds: config.uploadExpiryMs,
      });
  return new RecordingStore(inner, uploads);
}
