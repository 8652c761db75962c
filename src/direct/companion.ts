/**
 * /s3/multipart: Uppy Companion's S3 multipart routes, in Companion's JSON shapes, over the same direct-upload
 * service, so that @uppy/aws-s3 (`shouldUseMultipart: true`, `companionEndpoint` pointed at Freight) works
 * unchanged. Companion names an upload by its S3 UploadId and key; Uppy decides the part size itself, so these
 * URLs bind no Content-Length (the parts check at completion still runs).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { S3_LIMITS } from '../config/index.js';
import { ErrorBody } from '../api/views.js';
import { badRequest } from '../errors.js';
import { Filename, MimeType } from './routes.js';
import type { DirectUploads } from './service.js';

const Key = Type.Object({ key: Type.String({ minLength: 1 }) });
const UploadIdParam = Type.Object({ uploadId: Type.String({ minLength: 1 }) });

export const companionRoutes: FastifyPluginAsyncTypebox<{ direct: DirectUploads }> = async (app, { direct }) => {
  const find = (userId: string, uploadId: string, key: string) => direct.findByS3UploadId(userId, uploadId, key);

  // createMultipartUpload: {filename, type, metadata} → {key, uploadId}
  app.post(
    '/s3/multipart',
    {
      schema: {
        body: Type.Object({
          filename: Filename,
          type: Type.Optional(Type.Union([MimeType, Type.Literal('')])),
          metadata: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.Unknown(), { maxProperties: 32 })),
        }),
        response: { 200: Type.Object({ key: Type.String(), uploadId: Type.String() }), '4xx': ErrorBody },
      },
    },
    async (request) => {
      const { filename, type, metadata } = request.body;
      const { upload } = await direct.create(request.user.id, {
        filename,
        size: undefined,
        mimeType: type || 'application/octet-stream',
        metadata: metadata && Object.fromEntries(Object.entries(metadata).map(([key, value]) => [key, String(value)])),
        parts: [],
      });
      return { key: upload.storageKey, uploadId: upload.s3UploadId ?? '' };
    },
  );

  // prepareUploadParts (batch): ?key=&partNumbers=1,2,3 → {presignedUrls: {"1": url, …}}
  app.get(
    '/s3/multipart/:uploadId/batch',
    {
      schema: {
        params: UploadIdParam,
        querystring: Type.Object({ key: Type.String({ minLength: 1 }), partNumbers: Type.String({ pattern: '^\\d+(,\\d+)*$' }) }),
        response: { 200: Type.Object({ presignedUrls: Type.Record(Type.String(), Type.String()) }), '4xx': ErrorBody },
      },
    },
    async (request) => {
      const upload = await find(request.user.id, request.params.uploadId, request.query.key);
      const partNumbers = request.query.partNumbers.split(',').map(Number);
      if (partNumbers.length > 1000) throw badRequest('at most 1000 parts per request');
      const signed = await direct.sign(request.user.id, upload.id, partNumbers.map((partNumber) => ({ partNumber })));
      return { presignedUrls: Object.fromEntries(signed.map((part) => [String(part.partNumber), part.url])) };
    },
  );

  // signPart: ?key= → {url, expires}
  app.get(
    '/s3/multipart/:uploadId/:partNumber',
    {
      schema: {
        params: Type.Object({ uploadId: Type.String({ minLength: 1 }), partNumber: Type.Integer({ minimum: 1, maximum: S3_LIMITS.maxParts }) }),
        querystring: Key,
        response: { 200: Type.Object({ url: Type.String(), expires: Type.Integer() }), '4xx': ErrorBody },
      },
    },
    async (request) => {
      const upload = await find(request.user.id, request.params.uploadId, request.query.key);
      const [signed] = await direct.sign(request.user.id, upload.id, [{ partNumber: request.params.partNumber }]);
      return { url: signed!.url, expires: Math.round((Date.parse(signed!.expiresAt) - Date.now()) / 1000) };
    },
  );

  // listParts: ?key= → [{PartNumber, Size, ETag}]
  app.get(
    '/s3/multipart/:uploadId',
    {
      schema: {
        params: UploadIdParam,
        querystring: Key,
        response: {
          200: Type.Array(Type.Object({ PartNumber: Type.Integer(), Size: Type.Integer(), ETag: Type.String() })),
          '4xx': ErrorBody,
        },
      },
    },
    async (request) => {
      const upload = await find(request.user.id, request.params.uploadId, request.query.key);
      const { parts } = await direct.listParts(request.user.id, upload.id);
      return parts.map((part) => ({ PartNumber: part.partNumber, Size: part.size, ETag: part.etag }));
    },
  );

  // completeMultipartUpload: ?key= {parts: [{PartNumber, ETag}]} → {location, key, bucket}
  app.post(
    '/s3/multipart/:uploadId/complete',
    {
      schema: {
        params: UploadIdParam,
        querystring: Key,
        body: Type.Object({
          parts: Type.Array(
            Type.Object({ PartNumber: Type.Integer({ minimum: 1, maximum: S3_LIMITS.maxParts }), ETag: Type.String({ minLength: 1 }) }),
            { minItems: 1, maxItems: S3_LIMITS.maxParts },
          ),
        }),
        response: {
          200: Type.Object({ location: Type.String(), key: Type.String(), bucket: Type.String() }),
          '4xx': ErrorBody,
        },
      },
    },
    async (request) => {
      const upload = await find(request.user.id, request.params.uploadId, request.query.key);
      const parts = request.body.parts.map((part) => ({ partNumber: part.PartNumber, etag: part.ETag }));
      const completed = await direct.complete(request.user.id, upload.id, parts);
      return { location: completed.location, key: completed.key, bucket: direct.bucket };
    },
  );

  // abortMultipartUpload: ?key= → {}
  app.delete(
    '/s3/multipart/:uploadId',
    {
      schema: { params: UploadIdParam, querystring: Key, response: { 200: Type.Object({}), '4xx': ErrorBody } },
    },
    async (request) => {
      const upload = await find(request.user.id, request.params.uploadId, request.query.key);
      await direct.abort(request.user.id, upload.id);
      return {};
    },
  );
};
