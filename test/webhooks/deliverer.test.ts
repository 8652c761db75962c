/**
 * The deliverer's bookkeeping, on an outbox in memory and the test receiver: a 2xx is delivered; anything else is
 * retried after the backoff (full jitter under 5 s × 2^(attempt-1), at most an hour); after 24 h it gives up; on
 * stop, an attempt in flight is cancelled and made due again at once.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { WebhookOutboxRow } from '../../src/db/schema.js';
import type { WebhookOutbox } from '../../src/db/webhook-outbox.js';
import { WebhookDeliverer } from '../../src/webhooks/deliverer.js';
import { eventually, silentLogger } from '../helpers/harness.js';
import { startReceiver, type Receiver } from './receiver.js';

let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

type Outcome =
  | { delivered: number }
  | { retry: number; delayMs: number; error: string }
  | { gaveUp: number; error: string };

/** An outbox holding `rows`, each claimed once, recording what the deliverer decided. */
function outboxOf(rows: WebhookOutboxRow[]) {
  const outcomes: Outcome[] = [];
  const outbox = {
    claimDue: async () => rows.splice(0).map((row) => ({ ...row, attempts: row.attempts + 1 })),
    markDelivered: async (id: number) => void outcomes.push({ delivered: id }),
    retryLater: async (id: number, delayMs: number, error: string) => void outcomes.push({ retry: id, delayMs, error }),
    giveUp: async (id: number, error: string) => void outcomes.push({ gaveUp: id, error }),
  };
  return { outbox: outbox as unknown as WebhookOutbox, outcomes };
}

const row = (id: number, attempts: number, ageMs = 0): WebhookOutboxRow => ({
  id,
  event: 'upload.created',
  uploadId: '00000000-0000-4000-8000-000000000000',
  payload: {
    id: '00000000-0000-4000-8000-000000000000',
    status: 'pending',
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
  },
  attempts,
  nextAttemptAt: new Date(),
  deliveredAt: null,
  lastError: null,
  createdAt: new Date(Date.now() - ageMs),
});

async function deliver(rows: WebhookOutboxRow[], random = () => 0.999) {
  const count = rows.length;
  const { outbox, outcomes } = outboxOf(rows);
  const deliverer = new WebhookDeliverer({
    outbox,
    config: {
      url: receiver.url,
      secret: 's'.repeat(32),
      timeoutMs: 1_000,
      preCreate: false,
      preFinish: false,
      progressIntervalMs: 0,
      events: [],
    },
    log: silentLogger(),
    random,
  });
  deliverer.start();
  await eventually(async () => (outcomes.length === count ? true : undefined), 5_000).finally(() => deliverer.stop());
  return outcomes;
}

test('a 2xx is delivered; a failure waits a random time under 5 s × 2^(attempt-1), never over an hour', async () => {
  receiver.answer = (request) => (request.json.id === 1 ? { status: 202 } : { status: 500 });
  const outcomes = await deliver([row(1, 0), row(2, 0), row(3, 2), row(4, 20)]);
  expect(outcomes).toEqual(
    expect.arrayContaining([
      { delivered: 1 },
      { retry: 2, delayMs: 4_995, error: 'the receiver answered 500' },
      { retry: 3, delayMs: 19_980, error: 'the receiver answered 500' },
      { retry: 4, delayMs: 3_596_400, error: 'the receiver answered 500' },
    ]),
  );
  const jittered = await deliver([row(5, 3)], () => 0.25);
  expect(jittered).toEqual([{ retry: 5, delayMs: 10_000, error: 'the receiver answered 500' }]);
});

test('an unreachable or silent receiver is a failure like a 5xx; after 24 h the event is given up', async () => {
  receiver.answer = () => 'hang';
  const silent = await deliver([row(6, 0)]);
  expect(silent).toEqual([expect.objectContaining({ retry: 6, error: 'the receiver: no answer within 1 s' })]);
  receiver.answer = () => ({ status: 410 });
  const old = await deliver([row(7, 40, 25 * 3_600_000)]);
  expect(old).toEqual([{ gaveUp: 7, error: 'the receiver answered 410' }]);
  receiver.answer = () => ({ status: 204 });
});

test('stop cancels an attempt in flight and makes the event due again at once', async () => {
  receiver.answer = () => 'hang';
  const { outbox, outcomes } = outboxOf([row(8, 0)]);
  const deliverer = new WebhookDeliverer({
    outbox,
    config: {
      url: receiver.url,
      secret: 's'.repeat(32),
      timeoutMs: 60_000,
      preCreate: false,
      preFinish: false,
      progressIntervalMs: 0,
      events: [],
    },
    log: silentLogger(),
  });
  deliverer.start();
  await eventually(async () => (receiver.received.some((request) => request.json.id === 8) ? true : undefined));
  await deliverer.stop();
  expect(outcomes).toEqual([
    { retry: 8, delayMs: 0, error: 'the receiver: the delivery was cancelled (Freight is stopping)' },
  ]);
  receiver.answer = () => ({ status: 204 });
});
