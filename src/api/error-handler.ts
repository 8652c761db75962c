/** Writes any error as JSON {error, message, details?}; the mapping itself lives in errors.ts. */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { toHttpAnswer } from '../errors.js';

export function jsonErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const answer = toHttpAnswer(error);
  if (answer.status >= 500) request.log.error({ err: error }, 'request failed');
  return reply
    .code(answer.status)
    .headers(answer.headers)
    .send({
      error: answer.code,
      message: answer.message,
      ...(answer.details === undefined ? {} : { details: answer.details }),
    });
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply) {
  return reply
    .code(404)
    .send({ error: 'ERR_ROUTE_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` });
}
