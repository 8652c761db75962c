/**
 * /s3/multipart: Uppy Companion's S3 multipart routes, in Companion's JSON shapes, over the same direct-upload
 * service, so that @uppy/aws-s3 (`shouldUseMultipart: true`, `companionEndpoint` pointed at Freight) works
 * unchanged. Companion names an upload by its S3 UploadId and key; Uppy decides the part size itself, so these
 * URLs bind no Content-Length (the parts check at completion still runs).
 */
import type { FastifyPluginAsyncJsonSchemaToTs } from '@fastify/type-provider-json-schema-to-ts';
import { ErrorBody } from '../http/schemas.js';
import { badRequest } from '../errors.js';
import { Filename, Metadata, MimeType, PartNumber } from './routes.js';
import { bindUploadId } from '../ops/logging.js';
import { metadataOfJson } from '../uploads/metadata.js';
import { MAX_SIGN_BATCH, type DirectUploads } from './service.js';

const KeyQuery = { type: 'object', properties: { key: { type: 'string', minLength: 1 } }, required: ['key'] } as const;
const UploadIdParams = {
  type: 'object',
  properties: { uploadId: { type: 'string', minLength: 1 } },
  required: ['uploadId'],
} as const;

const CreateBody = {
  type: 'object',
  properties: {
    filename: Filename,
    type: { anyOf: [MimeType, { type: 'string', maxLength: 0 }] },
    metadata: Metadata,
  },
  required: ['filename'],
} as const;

const Created = {
  type: 'object',
  properties: { key: { type: 'string' }, uploadId: { type: 'string' } },
  required: ['key', 'uploadId'],
} as const;

const BatchQuery = {
  type: 'object',
  properties: { key: { type: 'string', minLength: 1 }, partNumbers: { type: 'string', pattern: '^\\d+(,\\d+)*$' } },
  required: ['key', 'partNumbers'],
} as const;

const Batch = {
  type: 'object',
  properties: { presignedUrls: { type: 'object', additionalProperties: { type: 'string' } } },
  required: ['presignedUrls'],
} as const;

const SignParams = {
  type: 'object',
  properties: { uploadId: { type: 'string', minLength: 1 }, partNumber: PartNumber },
  required: ['uploadId', 'partNumber'],
} as const;

const Signed = {
  type: 'object',
  properties: { url: { type: 'string' }, expires: { type: 'integer' } },
  required: ['url', 'expires'],
} as const;

const PartList = {
  type: 'array',
  items: {
    type: 'object',
    properties: { PartNumber: { type: 'integer' }, Size: { type: 'integer' }, ETag: { type: 'string' } },
    required: ['PartNumber', 'Size', 'ETag'],
  },
} as const;

const CompleteBody = {
  type: 'object',
  properties: {
    parts: {
      type: 'array',
      items: {
        type: 'object',
        properties: { PartNumber: PartNumber, ETag: { type: 'string', minLength: 1 } },
        required: ['PartNumber', 'ETag'],
      },
      minItems: 1,
      maxItems: 10_000,
    },
  },
  required: ['parts'],
} as const;

const Completed = {
  type: 'object',
  properties: { location: { type: 'string' }, key: { type: 'string' }, bucket: { type: 'string' } },
  required: ['location', 'key', 'bucket'],
} as const;

export const companionRoutes: FastifyPluginAsyncJsonSchemaToTs<{ Options: { direct: DirectUploads } }> = async (
  app,
  { direct },
) => {
  const find = (userId: string, uploadId: string, key: string) => direct.findByS3UploadId(userId, uploadId, key);

  // createMultipartUpload: {filename, type, metadata} → {key, uploadId}
  app.post(
    '/s3/multipart',
    { schema: { body: CreateBody, response: { 200: Created, '4xx': ErrorBody } } },
    async (request, reply) => {
      const { filename, type, metadata } = request.body;
      const { upload } = await direct.create(request.user.id, {
        filename,
        size: undefined,
        mimeType: type || 'application/octet-stream',
        metadata: metadataOfJson(metadata),
        parts: [],
      });
      bindUploadId(request, reply, upload.id);
      return { key: upload.storageKey, uploadId: upload.s3UploadId ?? '' };
    },
  );

  // prepareUploadParts (batch): ?key=&partNumbers=1,2,3 → {presignedUrls: {"1": url, …}}
  app.get(
    '/s3/multipart/:uploadId/batch',
    { schema: { params: UploadIdParams, querystring: BatchQuery, response: { 200: Batch, '4xx': ErrorBody } } },
    async (request) => {
      const upload = await find(request.user.id, request.params.uploadId, request.query.key);
      const partNumbers = request.query.partNumbers.split(',').map(Number);
      if (partNumbers.length > MAX_SIGN_BATCH) throw badRequest(`at most ${MAX_SIGN_BATCH} parts per request`);
      const signed = await direct.sign(
        request.user.id,
        upload.id,
        partNumbers.map((partNumber) => ({ partNumber })),
      );
      return { presignedUrls: Object.fromEntries(signed.map((part) => [String(part.partNumber), part.url])) };
    },
  );

  // signPart: ?key= → {url, expires}
  app.get(
    '/s3/multipart/:uploadId/:partNumber',
    { schema: { params: SignParams, querystring: KeyQuery, response: { 200: Signed, '4xx': ErrorBody } } },
    async (request) => {
      const upload = await find(request.user.id, request.params.uploadId, request.query.key);
      const [signed] = await direct.sign(request.user.id, upload.id, [{ partNumber: request.params.partNumber }]);
      return { url: signed!.url, expires: Math.round((Date.parse(signed!.expiresAt) - Date.now()) / 1000) };
    },
  );

  // listParts: ?key= → [{PartNumber, Size, ETag}]
  app.get(
    '/s3/multipart/:uploadId',
    { schema: { params: UploadIdParams, querystring: KeyQuery, response: { 200: PartList, '4xx': ErrorBody } } },
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
        params: UploadIdParams,
        querystring: KeyQuery,
        body: CompleteBody,
        response: { 200: Completed, 202: Completed, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const upload = await find(request.user.id, request.params.uploadId, request.query.key);
      const parts = request.body.parts.map((part) => ({ partNumber: part.PartNumber, etag: part.ETag }));
      const completed = await direct.complete(request.user.id, upload.id, parts);
      // Uppy takes any 2xx with a location as done: 202 while the pre-finish check has not approved it yet.
      return reply
        .code(completed.status === 'awaiting_approval' ? 202 : 200)
        .send({ location: completed.location, key: completed.key, bucket: direct.bucket });
    },
  );

  // abortMultipartUpload: ?key= → {}
  app.delete(
    '/s3/multipart/:uploadId',
    {
      schema: {
        params: UploadIdParams,
        querystring: KeyQuery,
        response: { 200: { type: 'object' }, '4xx': ErrorBody },
      },
    },
    async (request) => {
      const upload = await find(request.user.id, request.params.uploadId, request.query.key);
      await direct.abort(request.user.id, upload.id);
      return {};
    },
  );
};
