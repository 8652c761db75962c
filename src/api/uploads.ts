/** GET /api/uploads and GET /api/uploads/:id: the owner's view of their uploads, from Postgres. */
import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import { UPLOAD_STATUSES } from '../db/schema.js';
import type { ListCursor } from '../db/repository.js';
import { isUploadId } from '../db/ids.js';
import { answerDownload } from '../downloads/answer.js';
import type { DownloadLinks } from '../downloads/links.js';
import type { DownloadStorage } from '../downloads/storage.js';
import { badRequest } from '../errors.js';
import type { UploadService } from '../uploads/service.js';
import { ErrorBody, IdParams } from '../http/schemas.js';
import { UploadDetail, UploadView, uploadDetail, uploadView } from './views.js';

function encodeCursor(cursor: ListCursor): string {
  return Buffer.from(`${cursor.createdAt.toISOString()}|${cursor.id}`).toString('base64url');
}

/** An ISO 8601 timestamp with its zone, as encodeCursor writes it (Date.parse alone also takes "12" or "May 5"). */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

/** A cursor is base64url of "<timestamp>|<upload id>"; anything else is the client's mistake (400), not a query to run. */
function decodeCursor(text: string): ListCursor {
  const invalid = () => badRequest('cursor is not one this server handed out (pass nextCursor from the previous page)');
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw invalid();
  const fields = Buffer.from(text, 'base64url').toString('utf8').split('|');
  const [createdAt, id] = fields;
  if (fields.length !== 2 || !createdAt || !id || !TIMESTAMP.test(createdAt) || !isUploadId(id)) throw invalid();
  const date = new Date(createdAt);
  if (Number.isNaN(date.getTime())) throw invalid();
  return { createdAt: date, id };
}

const ListQuery = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: UPLOAD_STATUSES },
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
    cursor: { type: 'string', maxLength: 200 },
  },
  additionalProperties: false,
} as const;

const UploadList = {
  type: 'object',
  properties: {
    uploads: { type: 'array', items: UploadView },
    /** Pass as ?cursor= for the next page; null on the last page. */
    nextCursor: { type: ['string', 'null'] },
  },
  required: ['uploads', 'nextCursor'],
} as const;

/**
 * An upload's parts as recorded: size, status, the ETag S3 returned and (direct uploads) the base64 MD5 the client
 * signed the part with (S3 refused the part unless its bytes had it).
 */
const PartList = {
  type: 'object',
  properties: {
    parts: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          partNumber: { type: 'integer' },
          size: { type: 'integer' },
          status: { type: 'string', enum: ['pending', 'stored'] },
          etag: { type: ['string', 'null'] },
          md5: { type: ['string', 'null'] },
        },
        required: ['partNumber', 'size', 'status', 'etag', 'md5'],
        additionalProperties: false,
      },
    },
  },
  required: ['parts'],
} as const;

/** A download link: a URL that fetches the upload's bytes without a token, until `expiresAt` (downloads/links.ts). */
const DownloadLinkBody = {
  type: 'object',
  properties: { url: { type: 'string' }, expiresAt: { type: 'string' } },
  required: ['url', 'expiresAt'],
  additionalProperties: false,
} as const;

export const uploadsApi: FastifyPluginAsyncJsonSchemaToTs<{
  Options: {
    uploads: UploadService;
    downloads: DownloadStorage;
    links: DownloadLinks;
    /** PUBLIC_URL: this server as clients reach it (else the request's Host), for the links it hands out. */
    publicUrl: string | undefined;
  };
}> = async (app, { uploads, downloads, links, publicUrl }) => {
  app.get(
    '/api/uploads',
    { schema: { querystring: ListQuery, response: { 200: UploadList, 400: ErrorBody } } },
    async (request) => {
      const { status, limit, cursor } = request.query;
      const rows = await uploads.access.list(request.user.id, {
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
    '/api/uploads/:id/parts',
    { schema: { params: IdParams, response: { 200: PartList, 404: ErrorBody } } },
    async (request) => {
      const upload = await uploads.access.getOwned(request.user.id, request.params.id);
      const rows = await uploads.ledger.listParts(upload.id);
      return {
        parts: rows.map((row) => ({
          partNumber: row.partNumber,
          size: row.size,
          status: row.status,
          etag: row.etag,
          md5: row.md5,
        })),
      };
    },
  );

  app.get(
    '/api/uploads/:id',
    { schema: { params: IdParams, response: { 200: UploadDetail, 404: ErrorBody } } },
    async (request) => {
      const upload = await uploads.access.getOwned(request.user.id, request.params.id);
      return uploadDetail(upload, await uploads.ledger.countStoredParts(upload.id));
    },
  );

  // The bytes of a completed upload of either protocol: a redirect to S3, or streamed (Range, HEAD) from files.
  app.route({
    method: ['GET', 'HEAD'],
    url: '/api/uploads/:id/download',
    exposeHeadRoute: false,
    schema: { params: IdParams },
    handler: async (request, reply) =>
      answerDownload(downloads, await uploads.access.getOwnedLive(request.user.id, request.params.id), request, reply),
  });

  // A short-lived link to the same bytes that needs no token, for a browser to fetch itself (the page's Download).
  app.post(
    '/api/uploads/:id/download-link',
    { schema: { params: IdParams, response: { 200: DownloadLinkBody, 404: ErrorBody, 409: ErrorBody } } },
    async (request) => {
      const upload = await uploads.access.getOwnedLive(request.user.id, request.params.id);
      const link = await links.create(upload, publicUrl ?? `${request.protocol}://${request.headers.host}`);
      return { url: link.url, expiresAt: link.expiresAt.toISOString() };
    },
  );
};
