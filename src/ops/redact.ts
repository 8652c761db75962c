/**
 * What never reaches a log line or an error text: bearer tokens, presigned URLs' signatures and credentials, the
 * JWT secret and S3's secret key. pino's `redact` paths for the fields that hold them, a scrub for any text, and
 * an error serializer that keeps only known-safe fields (an AWS SDK error carries the HTTP request it failed
 * with, Authorization header included). Imports nothing: the logger and the S3 layer both lean on it.
 */
export const REDACTED = '[redacted]';

/** Fields that hold secrets wherever a caller might log them (pino's redact paths). */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  'authorization',
  '*.authorization',
  'token',
  '*.token',
  'secret',
  '*.secret',
  '*.*.secret',
  'secretAccessKey',
  '*.secretAccessKey',
  '*.*.secretAccessKey',
  'sessionToken',
  '*.sessionToken',
  '*.*.sessionToken',
  'AUTH_JWT_SECRET',
  '*.AUTH_JWT_SECRET',
  'S3_SECRET_ACCESS_KEY',
  '*.S3_SECRET_ACCESS_KEY',
  'METRICS_TOKEN',
  '*.METRICS_TOKEN',
  'metricsToken',
  '*.metricsToken',
];

const SECRETS_IN_TEXT: Array<[RegExp, string]> = [
  // Query authentication of presigned URLs (SigV4, and SigV2's Signature=).
  [/((?:X-Amz-(?:Signature|Credential|Security-Token)|Signature|AWSAccessKeyId)=)[^&\s"'<>]+/gi, `$1${REDACTED}`],
  // SigV4 Authorization headers: "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…".
  [/(Credential=)[^,&\s"']+/g, `$1${REDACTED}`],
  // Bearer tokens (JWTs and the metrics token).
  [/(Bearer\s+)[^\s"',]+/gi, `$1${REDACTED}`],
  // A JWT anywhere else (three base64url parts, the first a JSON header).
  [/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, REDACTED],
];

/** `text` with signatures, credentials and tokens blanked. */
export function scrub(text: string): string {
  let clean = text;
  for (const [pattern, replacement] of SECRETS_IN_TEXT) clean = clean.replace(pattern, replacement);
  return clean;
}

interface SerializedError {
  type: string;
  message: string;
  stack?: string;
  code?: string;
  statusCode?: number;
  /** The status and request id S3 answered with (AWS SDK errors). */
  s3?: { httpStatusCode?: number; requestId?: string };
  cause?: SerializedError | string;
}

/**
 * An error as logged: its type, message, stack, code and status, S3's answer status and request id, and its cause;
 * nothing else of it (an SDK error's $response holds the request it failed with, headers and all).
 */
export function serializeError(error: unknown, depth = 0): SerializedError | string {
  if (!(error instanceof Error)) return scrub(String(error));
  const { code, statusCode, $metadata } = error as Error & {
    code?: unknown;
    statusCode?: unknown;
    $metadata?: Record<string, unknown>;
  };
  const serialized: SerializedError = { type: error.name, message: scrub(error.message) };
  if (error.stack) serialized.stack = scrub(error.stack);
  if (typeof code === 'string') serialized.code = code;
  if (typeof statusCode === 'number') serialized.statusCode = statusCode;
  if ($metadata && typeof $metadata === 'object') {
    serialized.s3 = {};
    if (typeof $metadata.httpStatusCode === 'number') serialized.s3.httpStatusCode = $metadata.httpStatusCode;
    if (typeof $metadata.requestId === 'string') serialized.s3.requestId = $metadata.requestId;
  }
  if (error.cause !== undefined && depth < 4) serialized.cause = serializeError(error.cause, depth + 1);
  return serialized;
}
