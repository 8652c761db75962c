/**
 * The queries on upload rows, under domain names (the part rows in parts.ts, expiry and pruning in retention.ts,
 * final uploads of tus concatenation in finals.ts, reached through `parts`, `retention` and `finals`). Status changes are single guarded UPDATEs built from the lifecycle
 * table (`where status in (<from>)`), so two racing requests cannot both make the same transition.
 */
import { and, eq, getTableColumns, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { isUploadId, uploadLockKey } from './ids.js';
import { rowsOf, type Db } from './client.js';
import { PartRepository } from './parts.js';
import { RetentionRepository } from './retention.js';
import { FinalsRepository } from './finals.js';
import { WholeUploadRepository } from './whole-uploads.js';
import { insertAdmitted } from './admission.js';
import { OPEN_LIST, OPEN_SQL, reporting } from './statements.js';
import { uploadSnapshot } from './webhook-outbox.js';
import { TRANSITIONS, type Transition, type TransitionName } from '../lifecycle.js';
import { ApprovalQueries } from './approvals.js';
import { ListingRepository } from './listings.js';
import {
  fileUploads,
  uploadParts,
  webhookOutbox,
  type FileUpload,
  type NewFileUpload,
  type StagingState,
  type UploadStatus,
  type WebhookEvent,
  UPLOAD_EVENTS,
} from './schema.js';

/** A tus write that storage now holds: the offset moves from `from` to `to`, with the part it completed, if any. */
export interface StoredAdvance {
  from: number;
  to: number;
  staging: StagingState | null;
  part?: { partNumber: number; size: number; etag: string } | undefined;
  /** The running SHA-256's state at `to` (null: none kept). */
  hashState: string | null;
  /** The upload's new expiry (UPLOAD_EXPIRY after this progress); unchanged when undefined. */
  expiresAt?: Date | undefined;
}

export interface ListCursor {
  createdAt: Date;
  id: string;
}

export interface UploadRepositoryOptions {
  /**
   * Webhooks are on: every creation and every transition that reports an event (lifecycle TRANSITIONS) writes it to
   * webhook_outbox in the same statement, so that a crash can neither lose an event nor invent one. A list: only
   * those events (WEBHOOK_EVENTS); true: all of them.
   */
  webhookEvents?: boolean | readonly WebhookEvent[];
}

export class UploadRepository {
  /** The queries on every request's path, built once (drizzle otherwise rebuilds the SQL each time). */
  private readonly byId;
  private readonly byOwnerAndId;
  private readonly byOwnerAndIdProbingLock;
  /** The events written (WEBHOOK_EVENTS; none without webhooks). */
  private readonly webhookEvents: ReadonlySet<WebhookEvent>;
  /** The part rows. */
  readonly parts: PartRepository;
  /** Expiry and pruning. */
  readonly retention: RetentionRepository;
  /** Final uploads of tus concatenation. */
  readonly finals: FinalsRepository;
  /** The queries of upload.progress events and of the pre-finish gate. */
  readonly approvals: ApprovalQueries;
  /** Small uploads stored whole (src/tus/s3/whole.ts). */
  readonly whole: WholeUploadRepository;
  /** The listings (an owner's pages, the operator's `freight uploads`). */
  readonly listings: ListingRepository;

  constructor(
    private readonly db: Db,
    options: UploadRepositoryOptions = {},
  ) {
    const events = options.webhookEvents ?? false;
    this.webhookEvents = new Set(events === true ? UPLOAD_EVENTS : events === false ? [] : events);
    this.parts = new PartRepository(db);
    this.retention = new RetentionRepository(db, this.webhookEvents);
    this.finals = new FinalsRepository(db, this.webhookEvents);
    this.approvals = new ApprovalQueries(db, this.webhookEvents);
    this.whole = new WholeUploadRepository(db, this.webhookEvents);
    this.listings = new ListingRepository(db);
    this.byId = db
      .select()
      .from(fileUploads)
      .where(eq(fileUploads.id, sql.placeholder('id')))
      .prepare('freight_upload_by_id');
    this.byOwnerAndId = db
      .select()
      .from(fileUploads)
      .where(and(eq(fileUploads.id, sql.placeholder('id')), eq(fileUploads.userId, sql.placeholder('userId'))))
      .prepare('freight_upload_by_owner_and_id');
    // pg_try_advisory_xact_lock holds the key for this statement's own transaction only (an instant): it answers
    // whether another session (a locker of any instance) holds the upload's tus lock, and takes nothing away.
    this.byOwnerAndIdProbingLock = db
      .select({
        ...getTableColumns(fileUploads),
        idle: sql<boolean>`pg_try_advisory_xact_lock(${sql.placeholder('key')}::bigint)`,
      })
      .from(fileUploads)
      .where(and(eq(fileUploads.id, sql.placeholder('id')), eq(fileUploads.userId, sql.placeholder('userId'))))
      .prepare('freight_upload_by_owner_and_id_probing_lock');
  }

  async insertUpload(row: NewFileUpload): Promise<FileUpload> {
    const [created] = await reporting(this.db, this.webhookEvents, 'upload.created', (db) =>
      db.insert(fileUploads).values(row).returning(),
    );
    if (!created) throw new Error(`insert of upload ${row.id} returned no row`);
    return created;
  }

  /**
   * Removes an upload nobody has used: created, and no byte or state recorded since (a creation recorded after
   * its request was answered 503). Its upload.created event goes with it if it was not delivered yet; if it was,
   * an upload.aborted event tells the receiver the upload is no more.
   */
  async deleteUnusedUpload(id: string): Promise<void> {
    if (this.webhookEvents.size === 0) {
      await this.db
        .delete(fileUploads)
        .where(
          and(
            eq(fileUploads.id, id),
            eq(fileUploads.status, 'pending'),
            eq(fileUploads.bytesReceived, 0),
            isNull(fileUploads.s3UploadId),
          ),
        );
      return;
    }
    await this.db.execute(sql`
      with deleted as (
        delete from ${fileUploads}
        where id = ${id} and status = 'pending' and bytes_received = 0 and s3_upload_id is null
        returning *
      ), unsent as (
        delete from ${webhookOutbox} where upload_id in (select id from deleted) and delivered_at is null
      )
      insert into ${webhookOutbox} (event, upload_id, payload)
      select 'upload.aborted', deleted.id,
        ${uploadSnapshot('deleted')} || jsonb_build_object('status', 'aborted', 'error', 'the creation was undone: its request had been answered 503')
      from deleted
      where ${this.webhookEvents.has('upload.aborted')}::boolean
        and exists (select 1 from ${webhookOutbox} o where o.upload_id = deleted.id and o.delivered_at is not null)`);
  }

  /**
   * Inserts the upload unless its user already has `limit` open uploads (pending, uploading or failed, and not
   * past their expiry as of `now`), or `keptLimit` uploads of any status (rows kept: completed ones, and ended ones
   * until they are pruned); then nothing is inserted and the count that is full is returned. A limit of 0: none.
   *
   * One statement, one round trip: the row's status comes from freight_admit_upload (drizzle/0006_admit_upload.sql),
   * which first takes an advisory lock of the user's (held until the statement commits), then counts with a
   * snapshot taken after it, and raises when a bound is full. So a user's concurrent creates take turns (each
   * counts the rows of those before it) while other users' creates never wait on it. A single INSERT … SELECT …
   * WHERE (select count(*) …) < limit would not do: under READ COMMITTED each of N racing statements counts from
   * its own snapshot, taken before any lock, so all N could see limit - 1 and insert.
   */
  async insertUploadWithinLimit(
    row: NewFileUpload,
    limit: number,
    now: Date,
    keptLimit = 0,
  ): Promise<{ created: FileUpload } | { open: number } | { kept: number }> {
    return insertAdmitted(this.db, this.webhookEvents, row, { limit, now, keptLimit });
  }

  /**
   * A final upload of tus concatenation, unless another final holds one of its partials (FinalsRepository): here,
   * so that a late success of it is undone like any creation's (wiring.ts).
   */
  insertFinalUpload(...args: Parameters<FinalsRepository['insertFinalUpload']>) {
    return this.finals.insertFinalUpload(...args);
  }

  async findUpload(id: string): Promise<FileUpload | undefined> {
    if (!isUploadId(id)) return undefined;
    const [row] = await this.byId.execute({ id });
    return row;
  }

  async findOwnedUpload(userId: string, id: string): Promise<FileUpload | undefined> {
    if (!isUploadId(id)) return undefined;
    const [row] = await this.byOwnerAndId.execute({ id, userId });
    return row;
  }

  /**
   * The caller's upload, and whether a request of any instance writes it right now (holds its tus lock), in one
   * statement: what a resume check needs to answer at once when nobody writes. On PGlite (one process) the probe
   * finds nothing held: the in-process locker knows.
   */
  async findOwnedUploadProbingWriter(
    userId: string,
    id: string,
  ): Promise<{ upload: FileUpload; writing: boolean } | undefined> {
    if (!isUploadId(id)) return undefined;
    const [row] = await this.byOwnerAndIdProbingLock.execute({ id, userId, key: uploadLockKey(id).toString() });
    if (!row) return undefined;
    const { idle, ...upload } = row;
    return { upload, writing: !idle };
  }

  async findOwnedUploadByS3UploadId(userId: string, s3UploadId: string): Promise<FileUpload | undefined> {
    const [row] = await this.db
      .select()
      .from(fileUploads)
      .where(and(eq(fileUploads.s3UploadId, s3UploadId), eq(fileUploads.userId, userId)));
    return row;
  }

  /**
   * Makes one transition of the lifecycle (src/lifecycle.ts): the upload moves to its status only from one
   * of its `from` statuses; undefined when it was in none of them. With webhooks on, the transition's event is
   * written in the same statement, only when the status changes (failed again after failed updates the error and
   * reports nothing).
   */
  async transition(
    id: string,
    name: TransitionName,
    set: Omit<Partial<NewFileUpload>, 'status'> = {},
  ): Promise<FileUpload | undefined> {
    const { from, to, event } = TRANSITIONS[name] as Transition;
    const update = (statuses: readonly UploadStatus[]) => (db: Db) =>
      db
        .update(fileUploads)
        .set({ ...set, status: to })
        .where(and(eq(fileUploads.id, id), inArray(fileUploads.status, [...statuses])))
        .returning();
    const changing = from.filter((status) => status !== to);
    const [changed] = changing.length > 0 ? await reporting(this.db, this.webhookEvents, event, update(changing)) : [];
    if (changed || changing.length === from.length) return changed;
    const [same] = await update([to])(this.db);
    return same;
  }

  /** Sets a fact that is set once (the S3 UploadId, a deferred length): false if it was already set. */
  async setOnce(id: string, set: { s3UploadId: string } | { totalSize: number }): Promise<boolean> {
    const column = 's3UploadId' in set ? fileUploads.s3UploadId : fileUploads.totalSize;
    const rows = await this.db
      .update(fileUploads)
      .set(set)
      .where(and(eq(fileUploads.id, id), isNull(column)))
      .returning({ id: fileUploads.id });
    return rows.length > 0;
  }

  /**
   * One statement: moves the stored offset of an open upload from `advance.from` to `advance.to` (with the
   * staging state and progress) and records the part it completed. Nothing happens unless the offset was
   * `from`, so a writer working from a stale view can never overwrite a newer truth. False in that case.
   */
  async advanceStoredOffset(id: string, advance: StoredAdvance): Promise<boolean> {
    const { from, to, staging, part, hashState, expiresAt } = advance;
    const result = await this.db.execute(sql`
      with moved as (
        update ${fileUploads}
        set stored_offset = ${to}, bytes_received = ${to},
            staging = ${staging === null ? null : JSON.stringify(staging)}::jsonb,
            hash_state = ${hashState}::text,
            expires_at = coalesce(${expiresAt?.toISOString() ?? null}::timestamptz, expires_at),
            status = ${TRANSITIONS.progress.to}, error = null, updated_at = now()
        where id = ${id} and stored_offset = ${from} and status in ${OPEN_SQL}
        returning id
      ), recorded as (
        insert into ${uploadParts} (upload_id, part_number, size, etag, status, hash_state)
        select id, ${part?.partNumber ?? 0}::integer, ${part?.size ?? 0}::bigint, ${part?.etag ?? null}::text,
          'stored'::part_status, ${hashState}::text from moved
        where ${part !== undefined}::boolean
        on conflict (upload_id, part_number) do update
          set size = excluded.size, etag = excluded.etag, status = excluded.status, hash_state = excluded.hash_state,
              updated_at = now()
      )
      select count(*)::int as moved from moved`);
    return (rowsOf<{ moved: number }>(result)[0]?.moved ?? 0) > 0;
  }

  /** The uploads of these ids that exist (ids that are not UUIDs name none). */
  async findUploads(ids: readonly string[]): Promise<FileUpload[]> {
    const valid = ids.filter(isUploadId);
    if (valid.length === 0) return [];
    return this.db.select().from(fileUploads).where(inArray(fileUploads.id, valid));
  }

  /** The uploads keyed so (storage_key is unique: at most one each). */
  async findUploadsByStorageKey(keys: readonly string[]): Promise<FileUpload[]> {
    if (keys.length === 0) return [];
    return this.db
      .select()
      .from(fileUploads)
      .where(inArray(fileUploads.storageKey, [...new Set(keys)]));
  }

  /**
   * Back to the start of part `partNumber` (offset `to`): the staged bytes past it were lost in storage (never
   * called on a whim). The running digest goes back with it, to the state recorded at the end of the part before.
   */
  async rewindStoredOffset(id: string, from: number, partNumber: number, to: number): Promise<boolean> {
    const rows = await this.db
      .update(fileUploads)
      .set({
        storedOffset: to,
        bytesReceived: to,
        staging: null,
        hashState: sql`(select ${uploadParts.hashState} from ${uploadParts} where ${uploadParts.uploadId} = ${id} and ${uploadParts.partNumber} = ${partNumber - 1})`,
      })
      .where(and(eq(fileUploads.id, id), eq(fileUploads.storedOffset, from)))
      .returning({ id: fileUploads.id });
    return rows.length > 0;
  }

  /**
   * Bytes the server holds for an upload that is still open; the first bytes move it to `uploading`
   * (and an upload whose last attempt failed goes back to `uploading` when it makes progress again). Bytes
   * beyond those recorded are progress: the expiry moves to `expiresAt`, when given.
   */
  async recordProgress(id: string, bytes: number, expiresAt?: Date): Promise<void> {
    await this.db
      .update(fileUploads)
      .set({
        bytesReceived: sql`greatest(${fileUploads.bytesReceived}, ${bytes})`,
        status: TRANSITIONS.progress.to,
        error: null,
        ...(expiresAt && {
          expiresAt: sql`case when ${bytes} > ${fileUploads.bytesReceived} then ${expiresAt.toISOString()}::timestamptz else ${fileUploads.expiresAt} end`,
        }),
      })
      .where(and(eq(fileUploads.id, id), inArray(fileUploads.status, OPEN_LIST)));
  }

  /**
   * Takes the upload's completion lock until `until`, if the upload is in one of `from` and nobody holds a
   * live lock. Only one of several concurrent completes gets the row back.
   */
  async lockForCompletion(id: string, until: Date): Promise<FileUpload | undefined> {
    const [row] = await this.db
      .update(fileUploads)
      .set({ lockedUntil: until })
      .where(
        and(
          eq(fileUploads.id, id),
          inArray(fileUploads.status, OPEN_LIST),
          or(isNull(fileUploads.lockedUntil), lt(fileUploads.lockedUntil, sql`now()`)),
        ),
      )
      .returning();
    return row;
  }

  async unlockCompletion(id: string): Promise<void> {
    await this.db.update(fileUploads).set({ lockedUntil: null }).where(eq(fileUploads.id, id));
  }
}

export type { PartRecord } from './parts.js';
