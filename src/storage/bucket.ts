/** Creates the bucket if it is missing and lets browsers PUT parts to it and read their ETag (direct uploads). */
import {
  CreateBucketCommand,
  HeadBucketCommand,
  PutBucketCorsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { s3StatusOf } from './s3.js';

export async function ensureBucket(
  client: S3Client,
  bucket: string,
  options: { corsOrigins: '*' | string[] },
): Promise<{ created: boolean }> {
  let created = false;
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (error) {
    if (s3StatusOf(error) !== 404) throw error;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    created = true;
  }
  await client.send(
    new PutBucketCorsCommand({
      Bucket: bucket,
      CORSConfiguration: {
        CORSRules: [
          {
            AllowedOrigins: options.corsOrigins === '*' ? ['*'] : options.corsOrigins,
            AllowedMethods: ['PUT', 'GET', 'HEAD'],
            AllowedHeaders: ['*'],
            // A browser uploading parts must read each part's ETag to complete the upload.
            ExposeHeaders: ['ETag'],
            MaxAgeSeconds: 3600,
          },
        ],
      },
    }),
  );
  return { created };
}
