/** How uploads look in JSON answers: one view for every route that shows an upload. */
import { Type, type Static } from 'typebox';
import { UPLOAD_STATUSES, type FileUpload } from '../db/schema.js';

const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

export const UploadView = Type.Object({
  id: Type.String(),
  filename: Type.Union([Type.String(), Type.Null()]),
  mimeType: Type.Union([Type.String(), Type.Null()]),
  protocol: Type.Union([Type.Literal('tus'), Type.Literal('direct')]),
  status: Type.Enum(UPLOAD_STATUSES),
  totalSize: Type.Union([Type.Integer(), Type.Null()]),
  bytesReceived: Type.Integer(),
  partSize: Type.Union([Type.Integer(), Type.Null()]),
  storageKey: Type.String(),
  error: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  completedAt: Timestamp,
  expiresAt: Timestamp,
});

export type UploadView = Static<typeof UploadView>;

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
    error: upload.error,
    createdAt: upload.createdAt.toISOString(),
    updatedAt: upload.updatedAt.toISOString(),
    completedAt: upload.completedAt?.toISOString() ?? null,
    expiresAt: upload.expiresAt?.toISOString() ?? null,
  };
}

export const ErrorBody = Type.Object({
  error: Type.String(),
  message: Type.String(),
  details: Type.Optional(Type.Unknown()),
});
