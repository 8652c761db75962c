/**
 * GET /metrics: the app's registry in Prometheus's text format; with METRICS_TOKEN set, only for
 * `Authorization: Bearer <METRICS_TOKEN>` (401 otherwise). And the timing of every request, by route pattern.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { unauthorized } from '../errors.js';
import type { Metrics } from './metrics.js';

/** Requests that matched no route share one label value: a raw URL would make a series per URL. */
const UNMATCHED = 'unmatched';

/** Times every request of `app` (hooks on the root instance, so that every plugin's routes are counted). */
export function timeRequests(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    metrics.httpRequestDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? UNMATCHED, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function metricsRoute(
  app: FastifyInstance,
  options: { metrics: Metrics; token: string | undefined },
): Promise<void> {
  const { metrics, token } = options;
  app.get('/metrics', async (request, reply) => {
    if (token !== undefined) {
      const given = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1];
      if (given === undefined || !sameToken(given, token)) {
        throw unauthorized('GET /metrics needs Authorization: Bearer <METRICS_TOKEN>');
      }
    }
    const text = await metrics.registry.metrics();
    return reply.header('Cache-Control', 'no-store').type(metrics.registry.contentType).send(text);
  });
}
