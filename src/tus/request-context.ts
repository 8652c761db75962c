/**
 * The authenticated user travels from the Fastify route into @tus/server's hooks, which see only a web Request
 * wrapping the Node request. The context is kept in a WeakMap keyed by the Node request (reachable from the
 * wrapper), not in AsyncLocalStorage: on Node 20 that turns on promise hooks for the whole process, a cost paid
 * on every promise of every streamed chunk.
 */
import type { IncomingMessage } from 'node:http';
import type { ServerOptions } from '@tus/server';
import type { FastifyBaseLogger } from 'fastify';
import type { User } from '../auth/authenticator.js';

export interface TusRequestContext {
  user: User;
  /** The request's logger (its reqId, and its uploadId once known). */
  log?: FastifyBaseLogger;
  /** Names the upload a creation made on every later line of the request. */
  identify?(uploadId: string): void;
  /** The id given to an upload this request created (a POST), for error bookkeeping. */
  createdId?: string;
  /** Set when the PATCH body stalled: the offset stored, which the answer reports. */
  stalledAt?: number;
}

/** The request object @tus/server hands its hooks. */
export type TusRequest = Parameters<NonNullable<ServerOptions['onIncomingRequest']>>[0];

const contexts = new WeakMap<IncomingMessage, TusRequestContext>();

export function bindContext(request: IncomingMessage, context: TusRequestContext): void {
  contexts.set(request, context);
}

/** The context of a raw request, if it came through the Fastify route. */
export const contextOfRaw = (request: IncomingMessage): TusRequestContext | undefined => contexts.get(request);

export function contextOf(request: TusRequest): TusRequestContext {
  const raw = request.runtime?.node?.req as IncomingMessage | undefined;
  const context = raw && contexts.get(raw);
  if (!context) throw new Error('a tus hook ran for a request that did not come through the Fastify route');
  return context;
}
