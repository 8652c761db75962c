/**
 * The INSERT of a new upload that asks freight_admit_upload (drizzle/0006_admit_upload.sql) whether the user's
 * bounds allow it, in the same statement, and reads its refusal (UploadRepository.insertUploadWithinLimit says why).
 */
import { sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { fileUploads, type FileUpload, type NewFileUpload, type WebhookEvent } from './schema.js';
import { OPEN_UPLOADS_LOCK, reporting } from './statements.js';
import { OPEN } from '../lifecycle.js';

/** The open statuses as the array freight_admit_upload takes. */
const OPEN_ARRAY = sql`array[${sql.join(
  OPEN.map((status) => sql`${status}`),
  sql`, `,
)}]::upload_status[]`;

/** freight_admit_upload's refusal (SQLSTATE FRL01, "open=<n>" or "kept=<n>"), wrapped by drizzle or not. */
function boundFull(error: unknown): { open: number } | { kept: number } | undefined {
  for (let current = error, depth = 0; current && depth < 4; depth++) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (code === 'FRL01' && typeof message === 'string') {
      const match = /(open|kept)=(\d+)/.exec(message);
      if (match?.[1] === 'open') return { open: Number(match[2]) };
      if (match?.[1] === 'kept') return { kept: Number(match[2]) };
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The upload inserted with its status from freight_admit_upload, or the bound that is full (nothing inserted). */
export async function insertAdmitted(
  db: Db,
  webhookEvents: ReadonlySet<WebhookEvent>,
  row: NewFileUpload,
  { limit, now, keptLimit }: { limit: number; now: Date; keptLimit: number },
): Promise<{ created: FileUpload } | { open: number } | { kept: number }> {
  const status = sql`freight_admit_upload(${row.userId}::text, ${now.toISOString()}::timestamptz, ${limit}::integer,
    ${keptLimit}::integer, ${OPEN_ARRAY}, ${OPEN_UPLOADS_LOCK}::integer, ${row.status ?? 'pending'}::upload_status)`;
  try {
    const [created] = await reporting(db, webhookEvents, 'upload.created', (tx) =>
      tx
        .insert(fileUploads)
        .values({ ...row, status })
        .returning(),
    );
    if (!created) throw new Error(`insert of upload ${row.id} returned no row`);
    return { created };
  } catch (error) {
    const full = boundFull(error);
    if (full) return full;
    throw error;
  }
}
