/**
 * upload.progress and WEBHOOK_EVENTS end to end: real PostgreSQL (a database of this file's own), a real S3 gateway,
 * a local receiver, tus-js-client. A 200 MiB upload in 25 PATCHes of one part each, the server's clock moved 10 s
 * after each: with WEBHOOK_PROGRESS_INTERVAL=30s at most ⌊240 s / 30 s⌋ + 1 progress events are written, whatever
 * the number of parts; a receiver that never takes them (it hangs until WEBHOOK_TIMEOUT) has at most one waiting
 * per upload at the end, not a backlog. WEBHOOK_EVENTS leaves the events it does not name unrecorded.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  MiB,
  eventually,
  randomData,
  serviceEnv,
  startFreight,
  tokenFor,
  uniqueUser,
  type RunningFreight,
  isolatedServices,
} from '../helpers/harness.js';
import { startTusUpload, uploadIdOf } from '../helpers/tus-client.js';
import { receiverForFile } from './receiver.js';

const ctx = isolatedServices('freight-progress');
const receiver = receiverForFile();

const SECRET = 'webhook-test-secret-0123456789abcdef';

beforeAll(async () => {
  // Every progress event written, counted beside the outbox (coalescing deletes the ones it replaces).
  const first = await startFreight(
    serviceEnv(ctx.bucket.bucket, { DATABASE_URL: ctx.database.url, JANITOR_INTERVAL: '0' }),
  );
  await first.close();
  await ctx.sql.unsafe(`
    create table progress_written (upload_id uuid not null, bytes bigint not null);
    create function count_progress() returns trigger language plpgsql as $$
      begin
        insert into progress_written values (new.upload_id, (new.payload->>'bytes_received')::bigint);
        return new;
      end $$;
    create trigger count_progress after insert on webhook_outbox
      for each row when (new.event = 'upload.progress') execute function count_progress();`);
});

const freightWith = (extra: Record<string, string>, now?: () => Date) =>
  startFreight(
    serviceEnv(ctx.bucket.bucket, {
      DATABASE_URL: ctx.database.url,
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_TIMEOUT: '1s',
      JANITOR_INTERVAL: '0',
      ...extra,
    }),
    now ? { now } : {},
  );

describe('upload.progress', () => {
  let freight: RunningFreight;
  const started = Date.now();
  let moved = 0;
  beforeAll(async () => {
    freight = await freightWith({ WEBHOOK_PROGRESS_INTERVAL: '30s' }, () => new Date(started + moved));
  });
  afterAll(async () => {
    await freight?.close();
  });

  test('a 200 MiB upload of 25 parts over 240 s: at most 9 progress events, and a receiver that never takes one has at most one waiting', async () => {
    // The receiver hangs on progress events (each attempt fails at WEBHOOK_TIMEOUT, then is retried with backoff).
    receiver.answer = (request) => (request.json.event === 'upload.progress' ? 'hang' : { status: 204 });
    const user = uniqueUser('long');
    const size = 200 * MiB;
    const data = randomData(size);
    let patches = 0;
    const run = startTusUpload(data, {
      endpoint: `${freight.url}/files/`,
      headers: { Authorization: `Bearer ${await tokenFor(user)}` },
      metadata: { filename: 'big.iso' },
      // One PATCH is one part (S3_PART_SIZE 8 MiB): each stores a part and moves the offset once.
      chunkSize: 8 * MiB,
      onChunkComplete: () => {
        patches++;
        moved += 10_000;
      },
    });
    const id = uploadIdOf(await run.done);
    expect(patches).toBe(25);
    // The offset moved at 0 s, 10 s … 240 s of the server's clock: every 30 s at most one event, none at the end.
    const written = await ctx.sql`select bytes from progress_written where upload_id = ${id} order by bytes`;
    expect(written.length).toBeGreaterThanOrEqual(2);
    expect(written.length).toBeLessThanOrEqual(Math.floor(240 / 30) + 1);
    expect(written.map((row) => Number(row.bytes))).toEqual(
      [0, 3, 6, 9, 12, 15, 18, 21].map((part) => (part + 1) * 8 * MiB),
    );

    // Coalesced: however many were written, at most one is waiting for the receiver.
    const waiting =
      await ctx.sql`select count(*)::int as n from webhook_outbox where upload_id = ${id} and event = 'upload.progress' and delivered_at is null`;
    expect(waiting[0]!.n).toBeLessThanOrEqual(1);
    const kept =
      await ctx.sql`select count(*)::int as n from webhook_outbox where upload_id = ${id} and event = 'upload.progress'`;
    expect(kept[0]!.n).toBeLessThanOrEqual(1);

    // What reached the receiver carries bytes received and the total, and the upload as the API shows it.
    const progress = receiver.received.filter(
      (request) => request.json.event === 'upload.progress' && request.json.upload.id === id,
    );
    for (const request of progress) {
      expect(request.json.upload).toMatchObject({ status: 'uploading', totalSize: size, filename: 'big.iso' });
      expect(request.json.upload.bytesReceived).toBeGreaterThan(0);
      expect(request.json.upload.bytesReceived).toBeLessThan(size);
    }
    // The completion is delivered as ever.
    await eventually(async () => {
      const [row] =
        await ctx.sql`select delivered_at from webhook_outbox where upload_id = ${id} and event = 'upload.completed'`;
      return row?.delivered_at ? true : undefined;
    }, 30_000);
  }, 300_000);
});

describe('WEBHOOK_EVENTS', () => {
  test('only the events named are recorded and sent; WEBHOOK_PROGRESS_INTERVAL=0 sends no progress', async () => {
    receiver.answer = () => ({ status: 204 });
    const freight = await freightWith({
      WEBHOOK_EVENTS: 'upload.completed,upload.aborted',
      WEBHOOK_PROGRESS_INTERVAL: '0',
    });
    try {
      const user = uniqueUser('chosen');
      const headers = { Authorization: `Bearer ${await tokenFor(user)}` };
      const completed = uploadIdOf(
        await startTusUpload(randomData(9 * MiB), {
          endpoint: `${freight.url}/files/`,
          headers,
          chunkSize: 8 * MiB,
          metadata: { filename: 'kept.bin' },
        }).done,
      );
      const created = await fetch(`${freight.url}/files/`, {
        method: 'POST',
        headers: { ...headers, 'Tus-Resumable': '1.0.0', 'Upload-Length': '10' },
      });
      const aborted = uploadIdOf(created.headers.get('location')!);
      expect(
        (
          await fetch(`${freight.url}/files/${aborted}`, {
            method: 'DELETE',
            headers: { ...headers, 'Tus-Resumable': '1.0.0' },
          })
        ).status,
      ).toBe(204);
      const recorded = async () =>
        (
          await ctx.sql`select upload_id, event, delivered_at from webhook_outbox where upload_id in (${completed}, ${aborted}) order by id`
        ).map((row) => [row.upload_id, row.event, row.delivered_at !== null]);
      await eventually(async () => ((await recorded()).every(([, , delivered]) => delivered) ? true : undefined));
      expect(await recorded()).toEqual([
        [completed, 'upload.completed', true],
        [aborted, 'upload.aborted', true],
      ]);
      const sent = receiver.received
        .filter((request) => [completed, aborted].includes(request.json.upload.id))
        .map((request) => request.json.event);
      expect(sent.sort()).toEqual(['upload.aborted', 'upload.completed']);
    } finally {
      await freight.close();
    }
  });
});
