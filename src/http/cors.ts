/**
 * The one CORS policy of the server, for every route (tus, the direct API, the owner's API): @fastify/cors,
 * registered once at the root. Browsers may send tus's and Freight's request headers with any method Freight
 * serves, and read every response header a client acts on (tus's, Location, Retry-After, ETag …).
 */
import type {
  FastifyCorsOptions,
  FastifyCorsOptionsDelegateCallback,
  FastifyPluginOptionsDelegate,
} from '@fastify/cors';
import type { Config } from '../config/index.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS'];

const ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Tus-Resumable',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Defer-Length',
  'Upload-Concat',
  'Upload-Checksum',
  'X-HTTP-Method-Override',
  'X-Requested-With',
  'X-Request-Id',
];

const EXPOSED_HEADERS = [
  'Location',
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Checksum-Algorithm',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Defer-Length',
  'Upload-Concat',
  'Upload-Expires',
  'Freight-Upload-Status',
  'Retry-After',
  'WWW-Authenticate',
  'Content-Disposition',
  'ETag',
  'Accept-Ranges',
  'Content-Range',
  'X-Request-Id',
];

/**
 * Options per request: an OPTIONS request without Access-Control-Request-Method is not a preflight but a tus
 * client asking what the server supports (Tus-Version, Tus-Extension …): it goes on to tus.
 */
export function corsPolicy(config: Config): FastifyPluginOptionsDelegate<FastifyCorsOptionsDelegateCallback> {
  const options: FastifyCorsOptions = {
    origin: config.corsOrigins === '*' ? '*' : config.corsOrigins,
    methods: METHODS,
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 86_400,
  };
  return () => (request, callback) => {
    callback(null, { ...options, preflight: request.headers['access-control-request-method'] !== undefined });
  };
}
