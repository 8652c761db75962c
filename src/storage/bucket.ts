/**
 * Creates the bucket if it is missing and lets browsers PUT parts to it and read their ETag (direct uploads), and
 * read a download's name, length and range after the redirect. MinIO's community edition has no bucket CORS
 * (PutBucketCors is NotImplemented): it applies one server-wide policy instead (MINIO_API_CORS_ALLOW_ORIGIN,
 * every origin by default), which exposes these headers too; that is reported, not an error.
 */
import { CreateBucketCommand, HeadBucketCommand, PutBucketCorsCommand, type S3Client } from '@aws-sdk/client-s3';
import { s3StatusOf } from '../errors.js';

export async function ensureBucket(
  client: S3Client,
  bucket: string,
  options: { corsOrigins: '*' | string[] },
): Promise<{ created: boolean; cors: 'bucket' | 'server-wide' }> {
  let created = false;
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (error) {
    if (s3StatusOf(error) !== 404) throw error;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    created = true;
  }
  const rules = new PutBucketCorsCommand({
    Bucket: bucket,
    CORSConfiguration: {
      CORSRules: [
        {
          AllowedOrigins: options.corsOrigins === '*' ? ['*'] : options.corsOrigins,
          AllowedMethods: ['PUT', 'GET', 'HEAD'],
          AllowedHeaders: ['*'],
          // A browser uploading parts must read each part's ETag to complete the upload; one downloading, the
          // file's name, length and range.
          ExposeHeaders: ['ETag', 'Content-Disposition', 'Content-Length', 'Content-Range', 'Accept-Ranges'],
          MaxAgeSeconds: 3600,
        },
      ],
    },
  });
  try {
    await client.send(rules);
  } catch (error) {
    if ((error as { name?: string }).name !== 'NotImplemented') throw error;
    return { created, cors: 'server-wide' };
  }
  return { created, cors: 'bucket' };
}
