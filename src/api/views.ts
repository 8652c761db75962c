/**
 * How uploads look in JSON answers: one view for every route that shows an upload. Schemas are plain JSON
 * Schema (`as const`); their TypeScript types come from json-schema-to-ts, so each shape is declared once.
 */
import type { FromSchema } from 'json-schema-to-ts';
import { UPLOAD_STATUSES, type FileUpload } from '../db/schema.js';

const nullable = <T extends string>(type: T) => ({ type: [type, 'null'] }) as const;
const timestamp = { type: 'string', format: 'date-time' } as const;

export const UploadView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    filename: nullable('string'),
    mimeType: nullable('string'),
    protocol: { type: 'string', enum: ['tus', 'direct'] },
    status: { type: 'string', enum: UPLOAD_STATUSES },
    totalSize: nullable('integer'),
    bytesReceived: { type: 'integer' },
    partSize: nullable('integer'),
    storageKey: { type: 'string' },
    /** The SHA-256 (hex) of the stored bytes, once completed (tus uploads; concatenated ones once hashed). */
    sha256: nullable('string'),
    /** tus concatenation: partial, final, or null. */
    concat: { type: ['string', 'null'], enum: ['partial', 'final', null] },
    /** A final upload's partial uploads, in order. */
    partials: { type: ['array', 'null'], items: { type: 'string' } },
    error: nullable('string'),
    createdAt: timestamp,
    updatedAt: timestamp,
    completedAt: { ...timestamp, type: ['string', 'null'] },
    expiresAt: { ...timestamp, type: ['string', 'null'] },
  },
  required: [
    'id',
    'filename',
    'mimeType',
    'protocol',
    'status',
    'totalSize',
    'bytesReceived',
    'partSize',
    'storageKey',
    'sha256',
    'concat',
    'partials',
    'error',
    'createdAt',
    'updatedAt',
    'completedAt',
    'expiresAt',
  ],
  additionalProperties: false,
} as const;

export type UploadView = FromSchema<typeof UploadView>;

export function uploadView(upload: FileUpload): UploadView {
  return {
    id: upload.id,
    filename: upload.filename,
    mimeType: upload.mimeType,
    protocol: upload.protocol,
    status: upload.status,
    totalSize: upload.totalSize,
    bytesReceived: upload.bytesReceived,
    partSize: upload.partSize,
    storageKey: upload.storageKey,
    sha256: upload.sha256,
    concat: upload.concat,
    partials: upload.concatPartials,
    error: upload.error,
    createdAt: upload.createdAt.toISOString(),
    updatedAt: upload.updatedAt.toISOString(),
    completedAt: upload.completedAt?.toISOString() ?? null,
    expiresAt: upload.expiresAt?.toISOString() ?? null,
  };
}

/** One upload as GET /api/uploads/:id shows it (and webhooks send it): the view, and its stored parts counted. */
export const UploadDetail = {
  ...UploadView,
  properties: { ...UploadView.properties, partsCount: { type: 'integer' } },
  required: [...UploadView.required, 'partsCount'],
} as const;

export type UploadDetail = FromSchema<typeof UploadDetail>;

export function uploadDetail(upload: FileUpload, partsCount: number): UploadDetail {
  return { ...uploadView(upload), partsCount };
}
