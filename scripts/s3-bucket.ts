/** npm run s3:bucket – creates S3_BUCKET if missing and sets its CORS rules (CORS_ORIGINS) for browser uploads. */
import { ConfigError, loadConfig } from '../src/config/index.js';
import { ensureBucket } from '../src/storage/bucket.js';
import { createS3Client } from '../src/storage/s3.js';

try {
  const config = loadConfig({ ...process.env, AUTH_DISABLED: 'true' });
  if (!config.s3) throw new ConfigError('S3_BUCKET', 'is not set');
  const client = createS3Client(config.s3);
  const { created, cors } = await ensureBucket(client, config.s3.bucket, { corsOrigins: config.corsOrigins });
  console.log(
    cors === 'bucket'
      ? `bucket ${config.s3.bucket} ${created ? 'created' : 'exists'}; CORS allows ${String(config.corsOrigins)} to PUT parts and read ETag`
      : `bucket ${config.s3.bucket} ${created ? 'created' : 'exists'}; this server has no bucket CORS rules (MinIO: set MINIO_API_CORS_ALLOW_ORIGIN)`,
  );
  client.destroy();
} catch (error) {
  console.error(`s3:bucket: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
