/** GET /healthz (the process answers) and GET /readyz (the database and the storage answer too). */
import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';

/** A named dependency check: resolves when the dependency works, rejects with the reason otherwise. */
export type ReadinessCheck = () => Promise<void>;

const CHECK_TIMEOUT_MS = 3000;

function withTimeout(check: ReadinessCheck): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    check(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

const Health = {
  type: 'object',
  properties: { status: { type: 'string', enum: ['ok'] } },
  required: ['status'],
} as const;

const Readiness = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'unavailable'] },
    checks: { type: 'object', additionalProperties: { type: 'string' } },
  },
  required: ['status', 'checks'],
} as const;

export const healthRoutes: FastifyPluginAsyncJsonSchemaToTs<{
  Options: { checks: Record<string, ReadinessCheck> };
}> = async (app, { checks }) => {
  app.get('/healthz', { schema: { response: { 200: Health } } }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', { schema: { response: { 200: Readiness, 503: Readiness } } }, async (request, reply) => {
    const names = Object.keys(checks);
    const results = await Promise.allSettled(names.map((name) => withTimeout(checks[name]!)));
    const report: Record<string, string> = {};
    results.forEach((result, index) => {
      report[names[index]!] =
        result.status === 'fulfilled' ? 'ok' : `failed: ${String(result.reason?.message ?? result.reason)}`;
    });
    const ready = results.every((result) => result.status === 'fulfilled');
    if (!ready) request.log.warn({ checks: report }, 'not ready');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks: report });
  });
};
