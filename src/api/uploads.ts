/** GET /api/uploads and GET /api/uploads/:id: the owner's view of their uploads, from Postgres. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { UPLOAD_STATUSES } from '../db/schema.js';
import type { ListCursor } from '../db/repository.js';
import { badRequest } from '../errors.js';
import type { UploadService } from '../uploads/service.js';
import { ErrorBody, UploadView, uploadView } from './views.js';

function encodeCursor(cursor: ListCursor): string {
  return Buffer.from(`${cursor.createdAt.toISOString()}|${cursor.id}`).toString('base64url');
}

function decodeCursor(text: string): ListCursor {
  const [createdAt, id] = Buffer.from(text, 'base64url').toString('utf8').split('|');
  const date = new Date(createdAt ?? '');
  if (!id || Number.isNaN(date.getTime())) throw badRequest('cursor is not one this server handed out');
  return { createdAt: date, id };
}

export const uploadsApi: FastifyPluginAsyncTypebox<{ uploads: UploadService }> = async (app, { uploads }) => {
  app.get(
    '/api/uploads',
    {
      schema: {
        querystring: Type.Object({
          status: Type.Optional(Type.Enum(UPLOAD_STATUSES)),
          limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
        }),
        response: {
          200: Type.Object({
            uploads: Type.Array(UploadView),
            /** Pass as ?cursor= for the next page; null on the last page. */
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          400: ErrorBody,
        },
      },
    },
    async (request) => {
      const { status, limit, cursor } = request.query;
      const rows = await uploads.list(request.user.id, {
        status,
        limit: limit + 1,
        after: cursor === undefined ? undefined : decodeCursor(cursor),
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        uploads: page.map(uploadView),
        nextCursor: rows.length > limit && last ? encodeCursor(last) : null,
      };
    },
  );

  app.get(
    '/api/uploads/:id',
    {
      schema: {
        params: Type.Object({ id: Type.String() }),
        response: {
          200: Type.Object({ ...UploadView.properties, partsCount: Type.Integer() }),
          404: ErrorBody,
        },
      },
    },
    async (request) => {
      const upload = await uploads.getOwned(request.user.id, request.params.id);
      return { ...uploadView(upload), partsCount: await uploads.countStoredParts(upload.id) };
    },
  );
};
