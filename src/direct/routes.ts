/**
 * /api/multipart: the direct-to-S3 API. JSON in and out, same bearer auth and ownership as tus.
 *
 *   POST   /api/multipart                 create (plans parts, opens the S3 multipart upload, signs a first batch)
 *   POST   /api/multipart/:id/sign        presigned URLs for up to 1,000 parts
 *   GET    /api/multipart/:id/parts       the parts S3 holds (to resume)
 *   POST   /api/multipart/:id/complete    verify every part, then assemble
 *   DELETE /api/multipart/:id             abort
 */
import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import { S3_LIMITS } from '../config/index.js';
import { ErrorBody, IdParams } from '../http/schemas.js';
import { bindUploadId } from '../ops/logging.js';
import { MAX_METADATA_KEYS, MAX_METADATA_KEY_SIZE, metadataOfJson } from '../uploads/metadata.js';
import { MAX_SIGN_BATCH, type DirectUploads } from './service.js';

/** A file name, not a path: no separators, no control characters. */
export const Filename = {
  type: 'string',
  minLength: 1,
  maxLength: 1024,
  pattern: '^(?!\\.{1,2}$)[^/\\\\\\u0000-\\u001f\\u007f]+$',
} as const;
export const MimeType = { type: 'string', maxLength: 255, pattern: '^[\\w.+-]+/[\\w.+-]+(\\s*;.*)?$' } as const;
export const PartNumber = { type: 'integer', minimum: 1, maximum: S3_LIMITS.maxParts } as const;
/**
 * Upload metadata on the JSON routes: a flat object of strings (null: a key without a value). The values are
 * checked by metadataOfJson, not here (the validator would turn a number into a string), and the sizes with every
 * other path's (src/uploads/metadata.ts: METADATA_MAX_SIZE, METADATA_MAX_VALUE_SIZE).
 */
export const Metadata = {
  type: 'object',
  propertyNames: { minLength: 1, maxLength: MAX_METADATA_KEY_SIZE },
  maxProperties: MAX_METADATA_KEYS,
} as const;
/** The base64 MD5 of a part (16 bytes). */
const Md5 = { type: 'string', pattern: '^[A-Za-z0-9+/]{22}==$' } as const;
const PartToSign = {
  type: 'object',
  properties: { partNumber: PartNumber, md5: Md5 },
  required: ['partNumber'],
  additionalProperties: false,
} as const;

const SignedPart = {
  type: 'object',
  properties: {
    partNumber: { type: 'integer' },
    size: { type: ['integer', 'null'] },
    url: { type: 'string' },
    expiresAt: { type: 'string' },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
  },
  required: ['partNumber', 'size', 'url', 'expiresAt', 'headers'],
  additionalProperties: false,
} as const;

const CreateBody = {
  type: 'object',
  properties: {
    filename: Filename,
    // (over MAX_UPLOAD_SIZE is a 413 from the service, not a schema 400)
    size: { type: 'integer', minimum: 1 },
    mimeType: MimeType,
    partSize: { type: 'integer', minimum: S3_LIMITS.minPartSize, maximum: S3_LIMITS.maxPartSize },
    metadata: Metadata,
    /** Parts to sign with the answer (with their MD5s); default the first 20; [] for none. */
    parts: { type: 'array', items: PartToSign, maxItems: MAX_SIGN_BATCH },
  },
  required: ['filename', 'size'],
  additionalProperties: false,
} as const;

const Created = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    key: { type: 'string' },
    uploadId: { type: 'string' },
    partSize: { type: 'integer' },
    partCount: { type: 'integer' },
    expiresAt: { type: 'string' },
    parts: { type: 'array', items: SignedPart },
  },
  required: ['id', 'key', 'uploadId', 'partSize', 'partCount', 'expiresAt', 'parts'],
  additionalProperties: false,
} as const;

const SignBody = {
  type: 'object',
  properties: { parts: { type: 'array', items: PartToSign, minItems: 1, maxItems: MAX_SIGN_BATCH } },
  required: ['parts'],
  additionalProperties: false,
} as const;

const Signed = {
  type: 'object',
  properties: { parts: { type: 'array', items: SignedPart } },
  required: ['parts'],
  additionalProperties: false,
} as const;

const Parts = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    status: { type: 'string' },
    size: { type: ['integer', 'null'] },
    partSize: { type: ['integer', 'null'] },
    parts: {
      type: 'array',
      items: {
        type: 'object',
        properties: { partNumber: { type: 'integer' }, size: { type: 'integer' }, etag: { type: 'string' } },
        required: ['partNumber', 'size', 'etag'],
        additionalProperties: false,
      },
    },
  },
  required: ['id', 'status', 'size', 'partSize', 'parts'],
  additionalProperties: false,
} as const;

const CompleteBody = {
  type: 'object',
  properties: {
    parts: {
      type: 'array',
      items: {
        type: 'object',
        properties: { partNumber: PartNumber, etag: { type: 'string', minLength: 1, maxLength: 200 } },
        required: ['partNumber', 'etag'],
        additionalProperties: false,
      },
      minItems: 1,
      maxItems: S3_LIMITS.maxParts,
    },
  },
  required: ['parts'],
  additionalProperties: false,
} as const;

const Completed = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    key: { type: 'string' },
    location: { type: 'string' },
    size: { type: 'integer' },
    /** awaiting_approval: assembled, but the pre-finish check has not approved it yet (202 Accepted). */
    status: { type: 'string', enum: ['completed', 'awaiting_approval'] },
  },
  required: ['id', 'key', 'location', 'size', 'status'],
  additionalProperties: false,
} as const;

export const directRoutes: FastifyPluginAsyncJsonSchemaToTs<{ Options: { direct: DirectUploads } }> = async (
  app,
  { direct },
) => {
  app.post(
    '/api/multipart',
    { schema: { body: CreateBody, response: { 201: Created, '4xx': ErrorBody } } },
    async (request, reply) => {
      const { filename, size, mimeType, partSize, metadata, parts } = request.body;
      const created = await direct.create(request.user.id, {
        filename,
        size,
        mimeType: mimeType ?? 'application/octet-stream',
        partSize,
        metadata: metadataOfJson(metadata),
        parts,
      });
      const { upload } = created;
      bindUploadId(request, reply, upload.id);
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
    { schema: { params: IdParams, body: SignBody, response: { 200: Signed, '4xx': ErrorBody } } },
    async (request) => ({ parts: await direct.sign(request.user.id, request.params.id, request.body.parts) }),
  );

  app.get(
    '/api/multipart/:id/parts',
    { schema: { params: IdParams, response: { 200: Parts, '4xx': ErrorBody } } },
    async (request) => {
      const { upload, parts } = await direct.listParts(request.user.id, request.params.id);
      return { id: upload.id, status: upload.status, size: upload.totalSize, partSize: upload.partSize, parts };
    },
  );

  app.post(
    '/api/multipart/:id/complete',
    {
      schema: { params: IdParams, body: CompleteBody, response: { 200: Completed, 202: Completed, '4xx': ErrorBody } },
    },
    async (request, reply) => {
      const completed = await direct.complete(request.user.id, request.params.id, request.body.parts);
      // 202 Accepted: every byte is in and the object assembled, but the pre-finish check has not said yes yet.
      return reply.code(completed.status === 'awaiting_approval' ? 202 : 200).send(completed);
    },
  );

  app.delete(
    '/api/multipart/:id',
    { schema: { params: IdParams, response: { 204: { type: 'null' }, '4xx': ErrorBody } } },
    async (request, reply) => {
      await direct.abort(request.user.id, request.params.id);
      return reply.code(204).send(null);
    },
  );
};
