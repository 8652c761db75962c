/**
 * The authenticated user travels from the Fastify route into @tus/server's hooks (which only see a web
 * Request) through AsyncLocalStorage, so a hook never re-reads or re-verifies the token.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { User } from '../auth/authenticator.js';

export interface TusRequestContext {
  user: User;
  /** The id given to an upload this request created (a POST), for error bookkeeping. */
  createdId?: string;
}

const storage = new AsyncLocalStorage<TusRequestContext>();

export function runWithContext<T>(context: TusRequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

export function requestContext(): TusRequestContext {
  const context = storage.getStore();
  if (!context) throw new Error('a tus hook ran outside of a request context');
  return context;
}
