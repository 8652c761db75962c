/**
 * /api/multipart: the direct-to-S3 API. JSON in and out, same bearer auth and ownership as tus.
 *
 *   POST   /api/multipart                 create (plans parts, opens the S3 multipart upload, signs a first batch)
 *   POST   /api/multipart/:id/sign        presigned URLs for up to 1,000 parts
 *   GET    /api/multipart/:id/parts       the parts S3 holds (to resume)
 *   POST   /api/multipart/:id/complete    verify every part, then assemble
 *   DELETE /api/multipart/:id             abort
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { S3_LIMITS } from '../config/index.js';
import { ErrorBody } from '../api/views.js';
import type { DirectUploads } from './service.js';

/** A file name, not a path: no separators, no control characters. */
export const Filename = Type.String({ minLength: 1, maxLength: 1024, pattern: '^(?!\\.{1,2}$)[^/\\\\\\u0000-\\u001f\\u007f]+$' });
export const MimeType = Type.String({ maxLength: 255, pattern: '^[\\w.+-]+/[\\w.+-]+(\\s*;.*)?$' });
const Metadata = Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 1024 }), { maxProperties: 32 });
const PartNumber = Type.Integer({ minimum: 1, maximum: S3_LIMITS.maxParts });
/** The base64 MD5 of a part (16 bytes). */
const Md5 = Type.String({ pattern: '^[A-Za-z0-9+/]{22}==$' });
const PartToSign = Type.Object({ partNumber: PartNumber, md5: Type.Optional(Md5) }, { additionalProperties: false });
const PartsToSign = Type.Array(PartToSign, { minItems: 1, maxItems: 1000 });

const SignedPartView = Type.Object({
  partNumber: Type.Integer(),
  size: Type.Union([Type.Integer(), Type.Null()]),
  url: Type.String(),
  expiresAt: Type.String(),
  headers: Type.Record(Type.String(), Type.String()),
});

const Id = Type.Object({ id: Type.String() });

export const directRoutes: FastifyPluginAsyncTypebox<{ direct: DirectUploads }> = async (app, { direct }) => {
  app.post(
    '/api/multipart',
    {
      schema: {
        body: Type.Object(
          {
            filename: Filename,
            // (over MAX_UPLOAD_SIZE is a 413 from the service, not a schema 400)
            size: Type.Integer({ minimum: 1 }),
            mimeType: Type.Optional(MimeType),
            partSize: Type.Optional(Type.Integer({ minimum: S3_LIMITS.minPartSize, maximum: S3_LIMITS.maxPartSize })),
            metadata: Type.Optional(Metadata),
            /** Parts to sign with the answer (with their MD5s); default the first 20; [] for none. */
            parts: Type.Optional(Type.Array(PartToSign, { maxItems: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            id: Type.String(),
            key: Type.String(),
            uploadId: Type.String(),
            partSize: Type.Integer(),
            partCount: Type.Integer(),
            expiresAt: Type.String(),
            parts: Type.Array(SignedPartView),
          }),
          '4xx': ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const { filename, size, mimeType, partSize, metadata, parts } = request.body;
      const created = await direct.create(request.user.id, {
        filename,
        size,
        mimeType: mimeType ?? 'application/octet-stream',
        partSize,
        metadata,
        parts,
      });
      const { upload } = created;
      return reply.code(201).send({
        id: upload.id,
        key: upload.storageKey,
        uploadId: upload.s3UploadId ?? '',
        partSize: upload.partSize ?? 0,
        partCount: created.partCount ?? 0,
        expiresAt: upload.expiresAt?.toISOString() ?? '',
        parts: created.parts,
      });
    },
  );

  app.post(
    '/api/multipart/:id/sign',
    {
      schema: {
        params: Id,
        body: Type.Object({ parts: PartsToSign }, { additionalProperties: false }),
        response: { 200: Type.Object({ parts: Type.Array(SignedPartView) }), '4xx': ErrorBody },
      },
    },
    async (request) => ({ parts: await direct.sign(request.user.id, request.params.id, request.body.parts) }),
  );

  app.get(
    '/api/multipart/:id/parts',
    {
      schema: {
        params: Id,
        response: {
          200: Type.Object({
            id: Type.String(),
            status: Type.String(),
            size: Type.Union([Type.Integer(), Type.Null()]),
            partSize: Type.Union([Type.Integer(), Type.Null()]),
            parts: Type.Array(Type.Object({ partNumber: Type.Integer(), size: Type.Integer(), etag: Type.String() })),
          }),
          '4xx': ErrorBody,
        },
      },
    },
    async (request) => {
      const { upload, parts } = await direct.listParts(request.user.id, request.params.id);
      return { id: upload.id, status: upload.status, size: upload.totalSize, partSize: upload.partSize, parts };
    },
  );

  app.post(
    '/api/multipart/:id/complete',
    {
      schema: {
        params: Id,
        body: Type.Object(
          {
            parts: Type.Array(Type.Object({ partNumber: PartNumber, etag: Type.String({ minLength: 1, maxLength: 200 }) }), {
              minItems: 1,
              maxItems: S3_LIMITS.maxParts,
            }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ id: Type.String(), key: Type.String(), location: Type.String(), size: Type.Integer() }),
          '4xx': ErrorBody,
        },
      },
    },
    async (request) => direct.complete(request.user.id, request.params.id, request.body.parts),
  );

  app.delete(
    '/api/multipart/:id',
    { schema: { params: Id, response: { 204: Type.Null(), '4xx': ErrorBody } } },
    async (request, reply) => {
      await direct.abort(request.user.id, request.params.id);
      return reply.code(204).send(null);
    },
  );
};
