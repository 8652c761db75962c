/** The direct path: its own API and Companion's shapes over one service; without S3 both answer 501. */
import type { FastifyInstance } from 'fastify';
import { notImplemented } from '../errors.js';
import { companionRoutes } from './companion.js';
import { directRoutes } from './routes.js';
import type { DirectUploads } from './service.js';

export async function directPlugin(
  app: FastifyInstance,
  options: { direct: DirectUploads | undefined },
): Promise<void> {
  const { direct } = options;
  if (!direct) {
    const unavailable = async () => {
      throw notImplemented(
        'direct-to-S3 uploads need S3 storage: set S3_BUCKET (tus uploads at /files/ work without it)',
      );
    };
    for (const url of ['/api/multipart', '/api/multipart/*', '/s3/multipart', '/s3/multipart/*']) {
      app.all(url, unavailable);
    }
    return;
  }
  await app.register(directRoutes, { direct });
  await app.register(companionRoutes, { direct });
}
