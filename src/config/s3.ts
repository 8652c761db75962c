/** The S3 settings (S3_*), read and validated as the rest of the configuration (index.ts). */
import { ConfigError } from './error.js';

export interface S3Config {
  bucket: string;
  /** Custom endpoint (RGW, MinIO, R2 …); undefined means AWS. */
  endpoint: string | undefined;
  /**
   * The endpoint clients reach S3 at, for the URLs signed for them (direct part URLs, download redirects), when
   * it is not the one the server uses (in docker-compose the server reaches http://minio:9000, a browser
   * http://localhost:9000). undefined: `endpoint`.
   */
  publicEndpoint: string | undefined;
  region: string;
  /** Static credentials; undefined means the AWS SDK's default provider chain. */
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  forcePathStyle: boolean;
  /** Sign direct-upload part URLs for S3 Transfer Acceleration. */
  accelerate: boolean;
  /** Tag completed objects (their SHA-256); off for S3-compatible servers without object tagging (R2). */
  tagging: boolean;
  /** S3_KEY_PREFIX: before every new object's key (`uploads/`); the janitor acts on nothing outside it. '' : none. */
  keyPrefix: string;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const BAD_KEY_PREFIX = /[\u0000-\u001f\u007f\\]|(^|\/)\.{1,2}(\/|$)|\/\/|\.staging\//;

export function readS3(
  read: (name: string) => string | undefined,
  url: (name: string) => string | undefined,
  bool: (name: string) => boolean,
): S3Config | undefined {
  const bucket = read('S3_BUCKET');
  const endpoint = url('S3_ENDPOINT');
  const publicEndpoint = url('S3_PUBLIC_ENDPOINT');
  const accessKeyId = read('S3_ACCESS_KEY_ID');
  const secretAccessKey = read('S3_SECRET_ACCESS_KEY');
  const forcePathStyle = bool('S3_FORCE_PATH_STYLE');
  const accelerate = bool('S3_ACCELERATE');
  const tagging = read('S3_TAGGING') === undefined ? true : bool('S3_TAGGING');
  const keyPrefix = read('S3_KEY_PREFIX') ?? '';
  if (bucket === undefined) {
    if (keyPrefix) throw new ConfigError('S3_KEY_PREFIX', 'needs S3_BUCKET (the local file store names files by id)');
    return undefined;
  }
  if (keyPrefix.length > 256 || keyPrefix.startsWith('/') || BAD_KEY_PREFIX.test(keyPrefix)) {
    throw new ConfigError(
      'S3_KEY_PREFIX',
      `must be at most 256 characters, not start with "/", and hold no control character, backslash, "//", "." or ".." segment or ".staging/", got "${keyPrefix}"`,
    );
  }
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new ConfigError('S3_BUCKET', `is not a valid bucket name: "${bucket}"`);
  }
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new ConfigError(
      accessKeyId === undefined ? 'S3_ACCESS_KEY_ID' : 'S3_SECRET_ACCESS_KEY',
      `must be set together with ${accessKeyId === undefined ? 'S3_SECRET_ACCESS_KEY' : 'S3_ACCESS_KEY_ID'}`,
    );
  }
  if (accelerate && publicEndpoint !== undefined) {
    throw new ConfigError(
      'S3_PUBLIC_ENDPOINT',
      'cannot be combined with S3_ACCELERATE (accelerated URLs have an endpoint of their own)',
    );
  }
  if (accelerate && bucket.includes('.')) {
    throw new ConfigError(
      'S3_ACCELERATE',
      'needs a bucket name without dots (Transfer Acceleration uses virtual-hosted URLs)',
    );
  }
  return {
    bucket,
    endpoint,
    publicEndpoint,
    region: read('S3_REGION') ?? 'us-east-1',
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
    forcePathStyle,
    accelerate,
    tagging,
    keyPrefix,
  };
}
