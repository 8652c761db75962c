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
import { isUploadId } from '../db/ids.js';
import { REDACTED, REDACT_PATHS, scrub, serializeError } from './redact.js';

/** A request id a client may choose: a short token that cannot forge or break a log line. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Fastify's genReqId: the client's X-Request-Id when it is sane (so a proxy's id follows the request), else a UUID. */
export function requestIdOf(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
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
 * Methods whose requests carry no body: their one line is written when they end (a download from local files, which
 * may stream for long, included: its line says how long it took).
 */
const BODILESS = new Set(['HEAD', 'GET', 'OPTIONS', 'DELETE']);

/**
 * Each request's lines, written here rather than by Fastify (disableRequestLogging) so that they name the upload
 * too; and its id sent back as X-Request-Id, for a client to quote. A request with a body (a PATCH may run for
 * hours) has a first line when it comes (`incoming request`) and a last when it ends; a bodiless one (a resume
 * check, a download, a preflight) has its first line at debug only, and its last carries the request's fields:
 * one line, not two, for the requests that come by the thousand.
 */
export function logRequests(app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-Id', request.id);
    const uploadId = uploadIdIn(request);
    if (uploadId) bindUploadId(request, reply, uploadId);
    if (BODILESS.has(request.method)) request.log.debug({ req: request }, 'incoming request');
    else request.log.info({ req: request }, 'incoming request');
  });
  app.addHook('onResponse', async (request, reply) => {
    if (BODILESS.has(request.method)) {
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
    } else {
      reply.log.info({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
    }
  });
}
