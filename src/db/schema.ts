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
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { UPLOAD_EVENTS, UPLOAD_STATUSES } from '../lifecycle.js';

export { UPLOAD_EVENTS, UPLOAD_STATUSES };

export const uploadStatus = pgEnum('upload_status', UPLOAD_STATUSES);
export const uploadProtocol = pgEnum('upload_protocol', ['tus', 'direct']);
export const partStatus = pgEnum('part_status', ['pending', 'stored']);
/** tus concatenation: a partial upload, or the final upload made of partials. */
export const concatKind = pgEnum('concat_kind', ['partial', 'final']);
export const webhookEvent = pgEnum('webhook_event', UPLOAD_EVENTS);

/**
 * tus on S3: the bytes of the part under construction that are stored but not yet a part of the upload's own
 * multipart upload (a PATCH ended inside a part). `segments` are parts of a staging multipart upload (each at
 * least 5 MiB); `tail` holds the bytes after them, fewer than 5 MiB, as an object of its own. Together they
 * are exactly the bytes from the start of part `partNumber` to `stored_offset`.
 */
export interface StagingState {
  partNumber: number;
  /** The staging multipart upload of this part, once a segment was stored in it. */
  uploadId: string | null;
  segments: Array<{ partNumber: number; size: number; etag: string }>;
  tail: { key: string; size: number } | null;
}

/** What a stored object carries beyond its bytes (set by the pre-create hook for one upload). */
export interface ObjectShape {
  contentType?: string;
  contentDisposition?: string;
  storageClass?: string;
  tags?: Record<string, string>;
  metadata?: Record<string, string>;
}

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
     * tus: the offset durably stored: every byte before it is in storage, in whole parts and the staged bytes of
     * the part under construction. It only moves forward, each time by one guarded UPDATE after storage has the
     * bytes; it answers resume checks (HEAD) without asking storage. null for direct uploads.
     */
    storedOffset: bigint('stored_offset', { mode: 'number' }),
    /** tus on S3: bytes past the last whole part, stored but not yet joined into one (see StagingState). */
    staging: jsonb('staging').$type<StagingState>(),
    /** The running SHA-256 of the bytes before stored_offset (its saved state, base64; src/uploads/sha256/state.ts): resumes hashing anywhere. */
    hashState: text('hash_state'),
    /** The SHA-256 (hex) of the whole upload, once completed. */
    sha256: text('sha256'),
    /** tus concatenation: partial or final (null: an ordinary upload). */
    concat: concatKind('concat'),
    /** A final upload's partials, in order. */
    concatPartials: uuid('concat_partials').array(),
    /** The planned part size (direct uploads and S3-backed tus uploads). */
    partSize: bigint('part_size', { mode: 'number' }),
    /** The metadata the client sent (tus Upload-Metadata: a key without a value is null). */
    metadata: jsonb('metadata').$type<Record<string, string | null>>(),
    error: text('error'),
    /** A final upload: how many times its assembly was tried and failed (it is given up after CONCAT_MAX_ATTEMPTS). */
    assemblyAttempts: integer('assembly_attempts').notNull().default(0),
    /**
     * What the object carries, as the pre-create hook shaped it (Content-Type, Content-Disposition, storage class,
     * tags, metadata); null: nothing beyond the defaults.
     */
    objectShape: jsonb('object_shape').$type<ObjectShape>(),
    /** Set while one request completes the upload, so that concurrent completes cannot both call S3. */
    lockedUntil: timestamp('locked_until', MS),
    ...timestamps,
    completedAt: timestamp('completed_at', MS),
    expiresAt: timestamp('expires_at', MS),
  },
  (table) => [
    index('file_uploads_user_id_idx').on(table.userId, table.createdAt),
    index('file_uploads_status_idx').on(table.status),
    // One object per key, never another upload's (a pre-create hook names keys); the janitor finds rows by key.
    uniqueIndex('file_uploads_storage_key_unique').on(table.storageKey),
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
    /** Direct uploads: the base64 MD5 the client signed the part with, if it did. */
    md5: text('md5'),
    /** tus: the running SHA-256 state at the end of this part (so an upload can go back to any part boundary). */
    hashState: text('hash_state'),
    ...timestamps,
  },
  // The primary key is the unique (upload_id, part_number) pair.
  (table) => [
    primaryKey({ name: 'upload_parts_upload_id_part_number_pk', columns: [table.uploadId, table.partNumber] }),
  ],
);

/**
 * The webhook outbox: every event is written here in the same moment as the state change it reports, and a
 * deliverer sends it (and retries) until WEBHOOK_URL acknowledges it: delivered at least once, across restarts.
 */
export const webhookOutbox = pgTable(
  'webhook_outbox',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    event: webhookEvent('event').notNull(),
    uploadId: uuid('upload_id').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', MS).notNull().defaultNow(),
    deliveredAt: timestamp('delivered_at', MS),
    lastError: text('last_error'),
    createdAt: timestamp('created_at', MS).notNull().defaultNow(),
  },
  (table) => [index('webhook_outbox_due_idx').on(table.nextAttemptAt).where(sql`delivered_at is null`)],
);

export type FileUpload = typeof fileUploads.$inferSelect;
export type NewFileUpload = typeof fileUploads.$inferInsert;
export type UploadPart = typeof uploadParts.$inferSelect;
export type UploadStatus = FileUpload['status'];
export type UploadProtocol = FileUpload['protocol'];
export type WebhookOutboxRow = typeof webhookOutbox.$inferSelect;
export type WebhookEvent = (typeof UPLOAD_EVENTS)[number];
