/**
 * The one error writer of the tus routes. Answers are tusd's shape (text/plain, "ERR_MISMATCHED_OFFSET: …"), with
 * Tus-Resumable and the headers the error carries (Retry-After on 423 and 503). Errors of the DataStore and Locker
 * contracts of @tus/utils (FILE_NOT_FOUND, ERR_LOCK_TIMEOUT …, plain `{status_code, body}` objects) are named here,
 * at the one place they can reach a client.
 */
import { ERRORS, TUS_RESUMABLE } from '@tus/utils';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import {
  type FreightError,
  gone,
  locked,
  notFound,
  payloadTooLarge,
  toHttpAnswer,
  type HttpAnswer,
} from '../errors.js';

/** @tus/utils' errors, as the FreightError each one means. */
const FROM_TUS_UTILS = new Map<unknown, () => FreightError>([
  [ERRORS.FILE_NOT_FOUND, () => notFound()],
  [ERRORS.FILE_NO_LONGER_EXISTS, () => gone('the upload no longer exists')],
  // A lock not given back in time is the upload being busy: 423 Locked, which clients retry, never a 500.
  [ERRORS.ERR_LOCK_TIMEOUT, () => locked('the upload is locked by another request; retry shortly')],
  [ERRORS.ERR_SIZE_EXCEEDED, () => payloadTooLarge("the body goes past the upload's length")],
]);

/** A @tus/utils error as Freight's own, or the error unchanged. */
export const fromTusUtils = (error: unknown): unknown => FROM_TUS_UTILS.get(error)?.() ?? error;

/** The body of a tus error answer, as tusd writes them: "ERR_MISMATCHED_OFFSET: …". */
export const tusErrorBody = (answer: HttpAnswer): string => `${answer.code}: ${answer.message}\n`;

export function tusErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const answer = toHttpAnswer(fromTusUtils(error));
  if (answer.status >= 500) request.log.error({ err: error }, 'tus request failed');
  return reply
    .code(answer.status)
    .headers({ 'Tus-Resumable': TUS_RESUMABLE, ...answer.headers })
    .type('text/plain; charset=utf-8')
    .send(tusErrorBody(answer));
}
