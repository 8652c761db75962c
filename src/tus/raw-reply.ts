/**
 * A tus request is answered by @tus/server on the raw Node response (the Fastify reply is hijacked). Three things
 * Fastify would otherwise do are done here, on the raw response:
 * - the headers hooks set on the Fastify reply (CORS, by @fastify/cors, the one CORS of the whole server) are
 *   carried over, and @tus/server's own Access-Control-* headers are dropped, so that every answer has exactly
 *   one CORS policy;
 * - every 503 and 423 gets Retry-After, and the 204 of a PATCH whose body stalled its Upload-Offset:
 *   @tus/server lets a hook choose an error's status and body, not headers.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { RETRY_AFTER_SECONDS } from '../errors.js';
import { contextOfRaw } from './request-context.js';

type RawHeaders = string[] | Record<string, unknown> | undefined;

const isCors = (name: unknown): boolean => typeof name === 'string' && name.toLowerCase().startsWith('access-control-');

/** The same headers without Access-Control-*: srvx passes a flat [name, value, …] list; Node also takes objects. */
function withoutCors(headers: RawHeaders): RawHeaders {
  if (Array.isArray(headers)) {
    const kept: string[] = [];
    for (let i = 0; i + 1 < headers.length; i += 2) if (!isCors(headers[i])) kept.push(headers[i]!, headers[i + 1]!);
    return kept;
  }
  if (headers) return Object.fromEntries(Object.entries(headers).filter(([name]) => !isCors(name)));
  return headers;
}

export function prepareRawReply(reply: FastifyReply): void {
  const raw: ServerResponse = reply.raw;
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) raw.setHeader(name, value);
  }
  const writeHead = raw.writeHead;
  raw.writeHead = function (this: ServerResponse, status: number, ...rest: unknown[]) {
    if ((status === 503 || status === 423) && !this.hasHeader('Retry-After'))
      this.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
    const stalledAt = contextOfRaw(this.req)?.stalledAt;
    if (status === 204 && stalledAt !== undefined) this.setHeader('Upload-Offset', String(stalledAt));
    // writeHead(status, headers) or writeHead(status, statusMessage, headers)
    const last = rest.length - 1;
    if (last >= 0 && typeof rest[last] !== 'string') rest[last] = withoutCors(rest[last] as RawHeaders);
    return (writeHead as (...args: unknown[]) => ServerResponse).call(this, status, ...rest);
  } as ServerResponse['writeHead'];
}
