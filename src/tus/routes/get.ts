/** GET /files/:id: the bytes of the caller's completed upload (outside tus itself: a convenience of Freight's). */
import type { FastifyInstance } from 'fastify';
import { answerDownload } from '../../downloads/answer.js';
import { notFound } from '../../errors.js';
import type { TusDeps } from '../deps.js';
import { TUS_PATH, uploadIdOf } from '../urls.js';

export function getRoute(app: FastifyInstance, { uploads, downloads }: TusDeps): void {
  app.get(`${TUS_PATH}/*`, { exposeHeadRoute: false }, async (request, reply) => {
    const id = uploadIdOf(request);
    if (!id) throw notFound('GET /files lists nothing; GET /api/uploads lists your uploads');
    return answerDownload(downloads, await uploads.access.getOwnedLive(request.user.id, id, 'tus'), request, reply);
  });
}
