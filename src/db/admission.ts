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

type Limits = { limit: number; now: Date; keptLimit: number };
type Admission = { created: FileUpload } | { open: number } | { kept: number };

/** The INSERT itself: the refusal is thrown (SQLSTATE FRL01), which aborts the transaction it runs in. */
async function insertOrRefuse(
  db: Db,
  webhookEvents: ReadonlySet<WebhookEvent>,
  row: NewFileUpload,
  { limit, now, keptLimit }: Limits,
): Promise<{ created: FileUpload }> {
  const status = sql`freight_admit_upload(${row.userId}::text, ${now.toISOString()}::timestamptz, ${limit}::integer,
    ${keptLimit}::integer, ${OPEN_ARRAY}, ${OPEN_UPLOADS_LOCK}::integer, ${row.status ?? 'pending'}::upload_status)`;
  const [created] = await reporting(db, webhookEvents, 'upload.created', (tx) =>
    tx
      .insert(fileUploads)
      .values({ ...row, status })
      .returning(),
  );
  if (!created) throw new Error(`insert of upload ${row.id} returned no row`);
  return { created };
}

/** The refusal as a value: the bound that is full. */
async function refusalAsValue(insert: () => Promise<{ created: FileUpload }>): Promise<Admission> {
  try {
    return await insert();
  } catch (error) {
    const full = boundFull(error);
    if (full) return full;
    throw error;
  }
}

/** The upload inserted with its status from freight_admit_upload, or the bound that is full (nothing inserted). */
export function insertAdmitted(
  db: Db,
  webhookEvents: ReadonlySet<WebhookEvent>,
  row: NewFileUpload,
  limits: Limits,
): Promise<Admission> {
  return refusalAsValue(() => insertOrRefuse(db, webhookEvents, row, limits));
}

/**
 * insertAdmitted inside the transaction `tx`, which goes on after a refusal: the insert runs under a savepoint, so
 * the refusal rolls back only the savepoint, not what `tx` did before (locks it holds until it commits).
 */
export function insertAdmittedIn(
  tx: Db,
  webhookEvents: ReadonlySet<WebhookEvent>,
  row: NewFileUpload,
  limits: Limits,
): Promise<Admission> {
  return refusalAsValue(() => tx.transaction((savepoint) => insertOrRefuse(savepoint, webhookEvents, row, limits)));
}
