/**
 * DELETE /files/:id, tus termination: "When receiving a DELETE request for an existing upload the Server SHOULD
 * free associated resources and MUST respond with the 204 No Content status confirming that the upload was
 * terminated. For all future requests to this URL, the Server SHOULD respond with the 404 Not Found or 410 Gone
 * status." The extension is for "both, completed and unfinished, uploads": a completed upload's object goes too.
 * An upload that expired, was lost or rejected is terminated as well (what storage still holds of it is removed);
 * only a terminated one is gone already (410).
 */
import { TUS_RESUMABLE } from '@tus/utils';
import type { FastifyInstance } from 'fastify';
import { notFound } from '../../errors.js';
import type { TusDeps } from '../deps.js';
import { TUS_PATH, uploadIdOf } from '../urls.js';
import { withUploadLock } from '../write.js';

export function deleteRoute(app: FastifyInstance, { uploads, store, locker }: TusDeps): void {
  app.delete(`${TUS_PATH}/*`, async (request, reply) => {
    const id = uploadIdOf(request);
    if (!id) throw notFound('DELETE an upload at its URL (/files/<id>)');
    // The owner first (404, or 410 once terminated): only the owner may make a running writer stop.
    await uploads.access.getOwnedForDeletion(request.user.id, id, 'tus');
    // A writer still running is asked to stop; the upload is ended only once it has.
    await withUploadLock(
      locker,
      id,
      reply,
      () => {},
      () => store.remove(id),
    );
    return reply.code(204).header('Tus-Resumable', TUS_RESUMABLE).send();
  });
}
