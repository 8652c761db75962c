/**
 * Freight's log: pino's JSON lines through Fastify's logger, each request's lines carrying its id (`reqId`: the
 * client's X-Request-Id when it is a sane token, else a new UUID) and, once known, the upload's (`uploadId`).
 *
 * What never reaches the log: bearer tokens (Authorization), presigned URLs' signatures and credentials
 * (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token), the JWT secret and S3's secret key. Three layers:
 * pino's `redact` for the fields that hold them; serializers that keep only known-safe fields of requests and
 * errors (an AWS SDK error carries the HTTP request it failed with, Authorization header included); and a scrub
 * of any text that reaches the log (messages, error texts, the SDK's own lines, request URLs) that blanks
 * signature parameters and bearer tokens wherever they appear.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import type { Config } from '../config/index.js';
import { isUploadId } from '../db/repository.js';

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

/** A request id a client may choose: a short token that cannot forge or break a log line. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Fastify's genReqId: the client's X-Request-Id when it is sane (so a proxy's id follows the request), else a UUID. */
export function requestIdOf(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
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

/** A request as logged (Fastify's own fields), its URL scrubbed: a signed URL sent to Freight stays unsigned in the log. */
function serializeRequest(request: FastifyRequest) {
  return {
    method: request.method,
    url: scrub(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

/** Fastify's logger and request-id options; `stream`: where the JSON lines go (stdout by default; tests capture). */
export function loggingOptions(
  config: Pick<Config, 'logLevel'>,
  stream?: { write(line: string): void },
): Partial<FastifyServerOptions> {
  return {
    logger: {
      level: config.logLevel,
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: { req: serializeRequest as never, err: serializeError as never },
      hooks: {
        // Every text argument (the message, and any format arguments) is scrubbed on its way in.
        logMethod(args, method) {
          const clean = args.map((arg) => (typeof arg === 'string' ? scrub(arg) : arg)) as Parameters<typeof method>;
          return method.apply(this, clean);
        },
      },
      ...(stream ? { stream } : {}),
    },
    genReqId: requestIdOf,
    // logRequests() writes each request's first and last lines instead of Fastify, with the upload's id.
    logController: new LogController({ requestIdLogLabel: 'reqId', disableRequestLogging: true }),
  };
}

/** From now on every line of this request (its completion line included) names the upload. */
export function bindUploadId(request: FastifyRequest, reply: FastifyReply, uploadId: string): void {
  const bound = (request.log as FastifyBaseLogger & { bindings?(): Record<string, unknown> }).bindings?.();
  if (bound?.uploadId === uploadId) return;
  const log = request.log.child({ uploadId });
  request.log = log;
  reply.log = log;
}

/** The upload a request names: `:id`, the id in /files/<id>, or Companion's `?key=` (the key of a direct upload is its id). */
function uploadIdIn(request: FastifyRequest): string | undefined {
  const params = request.params as Record<string, string | undefined> | undefined;
  const route = request.routeOptions.url ?? '';
  const candidate =
    params?.id ??
    (route === '/files/*' ? params?.['*']?.split('/')[0] : undefined) ??
    (route.startsWith('/s3/multipart') ? (request.query as Record<string, unknown> | undefined)?.key : undefined);
  return typeof candidate === 'string' && isUploadId(candidate) ? candidate : undefined;
}

/**
 * Each request's first and last lines, written here rather than by Fastify (disableRequestLogging) so that they
 * name the upload too; and its id sent back as X-Request-Id, for a client to quote.
 */
export function logRequests(app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-Id', request.id);
    const uploadId = uploadIdIn(request);
    if (uploadId) bindUploadId(request, reply, uploadId);
    request.log.info({ req: request }, 'incoming request');
  });
  app.addHook('onResponse', async (_request, reply) => {
    reply.log.info({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  });
}
