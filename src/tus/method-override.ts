/**
 * tus 1.0, "X-HTTP-Method-Override: If present, this header MUST be interpreted as the request's method." Clients
 * behind proxies that only pass GET and POST (tus-js-client's `overridePatchMethod`) send PATCH and DELETE as POST
 * with this header. Fastify chooses a route by method before any hook runs, so the method is rewritten in
 * `rewriteUrl`, the one step that sees the raw request before routing (the URL itself is kept). Only under /files:
 * no other route speaks tus.
 */
import type { IncomingMessage } from 'node:http';
import { TUS_PATH } from './urls.js';

const UNDER_TUS = new RegExp(`^${TUS_PATH}(?:[/?]|$)`);

/** Fastify's rewriteUrl: the URL unchanged, the method the override names. */
export function overrideTusMethod(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const override = request.headers['x-http-method-override'];
  if (typeof override === 'string' && override.trim() !== '' && UNDER_TUS.test(url)) {
    request.method = override.trim().toUpperCase();
  }
  return url;
}
