/**
 * GET|HEAD /downloads/:id?expires=…&signature=…: a download link (links.ts) opened by whoever holds it, without a
 * token: the link itself is the permission, for that one upload until it expires. Answered like the other
 * download routes (answer.ts): the file with ranges, or on S3 a redirect to a presigned GET.
 */
import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import { IdParams } from '../http/schemas.js';
import type { UploadService } from '../uploads/service.js';
import { answerDownload } from './answer.js';
import { LINK_PATH, type DownloadLinks } from './links.js';
import type { DownloadStorage } from './storage.js';

const LinkQuery = {
  type: 'object',
  properties: {
    expires: { type: 'string', maxLength: 20 },
    signature: { type: 'string', maxLength: 100 },
  },
  required: ['expires', 'signature'],
} as const;

export const downloadLinkRoute: FastifyPluginAsyncJsonSchemaToTs<{
  Options: { links: DownloadLinks; uploads: UploadService; downloads: DownloadStorage };
}> = async (app, { links, uploads, downloads }) => {
  app.route({
    method: ['GET', 'HEAD'],
    url: `${LINK_PATH}/:id`,
    exposeHeadRoute: false,
    schema: { params: IdParams, querystring: LinkQuery },
    handler: async (request, reply) => {
      const { id } = request.params;
      links.check(id, request.query.expires, request.query.signature);
      // The signature says its owner asked for this link; what the owner would get now, they get (a completed
      // upload deleted since is gone: 410).
      const { userId } = await uploads.access.getUploadForStorage(id);
      return answerDownload(downloads, await uploads.access.getOwnedLive(userId, id), request, reply);
    },
  });
};
