/** The Fastify side of authentication: every protected scope adds this onRequest hook. */
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Authenticator, User } from './authenticator.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook before any protected handler runs. */
    user: User;
  }
}

/** Authenticates every request except CORS preflights (which carry no credentials). */
export function authHook(authenticator: Authenticator): onRequestAsyncHookHandler {
  return async function authenticate(request: FastifyRequest, _reply: FastifyReply) {
    if (request.method === 'OPTIONS') return;
    request.user = await authenticator.authenticate(request.headers.authorization);
  };
}
