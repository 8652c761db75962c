/**
 * The upload-state service over the database, as every process that changes uploads builds it: the server
 * (app.ts) and `freight cleanup` (janitor/deps.ts). Every repository call is bounded by DATABASE_TIMEOUT.
 */
import type { Config } from '../config/index.js';
import { withDeadlines } from '../db/availability.js';
import type { Database } from '../db/client.js';
import { UploadRepository } from '../db/repository.js';
import { UploadService, type UploadServiceOptions } from './service.js';

export function createUploadService(
  config: Config,
  database: Database,
  options: Omit<
    UploadServiceOptions,
    'expiryMs' | 'maxOpenUploadsPerUser' | 'maxUploadsPerUser' | 'metadataLimits'
  > = {},
): UploadService {
  // With webhooks on, every state change writes its event to the outbox in the same statement.
  // Only the events WEBHOOK_EVENTS chooses are written.
  const queries = new UploadRepository(database.db, { webhookEvents: config.webhooks?.events ?? false });
  // A creation answered 503 at its deadline but recorded later is removed: its client never saw it.
  const undoLateCreation = (row: { id: string }) => queries.deleteUnusedUpload(row.id);
  const repository = withDeadlines(
    queries,
    config.databaseTimeoutMs,
    { insertUpload: undoLateCreation, insertUploadWithinLimit: undoLateCreation, insertFinalUpload: undoLateCreation },
    options.metrics?.queryObserver(),
    ['parts', 'retention', 'finals', 'approvals', 'whole', 'listings'],
  );
  return new UploadService(repository, {
    ...options,
    expiryMs: config.uploadExpiryMs,
    maxOpenUploadsPerUser: config.userMaxOpenUploads,
    maxUploadsPerUser: config.userMaxUploads,
    metadataLimits: config.metadata,
    keyPrefix: config.s3?.keyPrefix ?? '',
    progressIntervalMs: config.webhooks?.progressIntervalMs ?? 0,
  });
}
