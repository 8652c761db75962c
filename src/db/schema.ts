/**
 * The database schema: one row per upload (both protocols), one row per S3 part.
 * Row types are inferred from here (FileUpload, UploadPart); nothing restates them.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';

export const UPLOAD_STATUSES = ['pending', 'uploading', 'completed', 'failed', 'aborted', 'expired'] as const;
export const uploadStatus = pgEnum('upload_status', UPLOAD_STATUSES);
export const uploadProtocol = pgEnum('upload_protocol', ['tus', 'direct']);
export const partStatus = pgEnum('part_status', ['pending', 'stored']);

/** Millisecond precision, like JavaScript dates, so a timestamp read back compares equal (list cursors rely on it). */
const MS = { withTimezone: true, precision: 3 } as const;

const timestamps = {
  createdAt: timestamp('created_at', MS).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', MS)
    .notNull()
    .defaultNow()
    .$onUpdate(() => sql`now()`),
};

export const fileUploads = pgTable(
  'file_uploads',
  {
    id: uuid('id').primaryKey(),
    userId: text('user_id').notNull(),
    filename: text('filename'),
    /** null while the length is deferred (tus creation-defer-length). */
    totalSize: bigint('total_size', { mode: 'number' }),
    mimeType: text('mime_type'),
    protocol: uploadProtocol('protocol').notNull(),
    /** The object key in the bucket (or the file name in the local store). */
    storageKey: text('storage_key').notNull(),
    /** The S3 multipart UploadId; null for the local file store. */
    s3UploadId: text('s3_upload_id').unique(),
    status: uploadStatus('status').notNull().default('pending'),
    /** Progress: bytes received so far, updated while bytes stream (at most once a second) and after each request. */
    bytesReceived: bigint('bytes_received', { mode: 'number' }).notNull().default(0),
    /**
     * tus: the offset durably stored as of the end of the last write, which answers resume checks (HEAD) without
     * asking storage. null while a write is in flight or after one was interrupted: then storage is asked.
     */
    storedOffset: bigint('stored_offset', { mode: 'number' }),
    /** The planned part size (direct uploads and S3-backed tus uploads). */
    partSize: bigint('part_size', { mode: 'number' }),
    /** The metadata the client sent (tus Upload-Metadata: a key without a value is null). */
    metadata: jsonb('metadata').$type<Record<string, string | null>>(),
    error: text('error'),
    /** Set while one request completes the upload, so that concurrent completes cannot both call S3. */
    lockedUntil: timestamp('locked_until', MS),
    ...timestamps,
    completedAt: timestamp('completed_at', MS),
    expiresAt: timestamp('expires_at', MS),
  },
  (table) => [
    index('file_uploads_user_id_idx').on(table.userId, table.createdAt),
    index('file_uploads_status_idx').on(table.status),
  ],
);

export const uploadParts = pgTable(
  'upload_parts',
  {
    uploadId: uuid('upload_id')
      .notNull()
      .references(() => fileUploads.id, { onDelete: 'cascade' }),
    partNumber: integer('part_number').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    etag: text('etag'),
    status: partStatus('status').notNull().default('pending'),
    ...timestamps,
  },
  // The primary key is the unique (upload_id, part_number) pair.
  (table) => [primaryKey({ name: 'upload_parts_upload_id_part_number_pk', columns: [table.uploadId, table.partNumber] })],
);

export type FileUpload = typeof fileUploads.$inferSelect;
export type NewFileUpload = typeof fileUploads.$inferInsert;
export type UploadPart = typeof uploadParts.$inferSelect;
export type UploadStatus = FileUpload['status'];
export type UploadProtocol = FileUpload['protocol'];
