/**
 * The deliverer's bookkeeping, on an outbox in memory and the test receiver: a 2xx is delivered; anything else is
 * retried after the backoff (full jitter under 5 s × 2^(attempt-1), at most an hour); after 24 h it gives up; on
 * stop, an attempt in flight is cancelled and made due again at once.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { WebhookOutboxRow } from '../../src/db/schema.js';
import type { WebhookOutbox } from '../../src/db/webhook-outbox.js';
import { WebhookDeliverer } from '../../src/webhooks/deliverer.js';
import { silentLogger } from '../helpers/harness.js';
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

/** An outbox holding `rows`, each claimed once, recording what the deliverer decided; `settled` once all are. */
function outboxOf(rows: WebhookOutboxRow[]) {
  const count = rows.length;
  const outcomes: Outcome[] = [];
  let settle!: () => void;
  const settled = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const record = (outcome: Outcome) => {
    outcomes.push(outcome);
    if (outcomes.length === count) settle();
  };
  const outbox = {
    claimDue: async () => rows.splice(0).map((row) => ({ ...row, attempts: row.attempts + 1 })),
    markDelivered: async (id: number) => record({ delivered: id }),
    retryLater: async (id: number, delayMs: number, error: string) => record({ retry: id, delayMs, error }),
    giveUp: async (id: number, error: string) => record({ gaveUp: id, error }),
  };
  return { outbox: outbox as unknown as WebhookOutbox, outcomes, settled };
}

/** The deliverer's clock in these tests: events are made `ageMs` before it. */
const NOW = Date.parse('2026-06-01T12:00:00Z');

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
  nextAttemptAt: new Date(NOW),
  deliveredAt: null,
  lastError: null,
  createdAt: new Date(NOW - ageMs),
});

/** Waits for `what` (a bound on a hang only: each outcome comes within the receiver's 1 s timeout). */
const within = <T>(what: string, promise: Promise<T>, ms = 5_000): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
};

async function deliver(rows: WebhookOutboxRow[], random = () => 0.999) {
  const { outbox, outcomes, settled } = outboxOf(rows);
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
    now: () => NOW,
  });
  deliverer.start();
  await within('the deliverer deciding on every event', settled).finally(() => deliverer.stop());
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
  // Just under 24 h old: retried still.
  const young = await deliver([row(9, 40, 24 * 3_600_000 - 1)]);
  expect(young).toEqual([expect.objectContaining({ retry: 9, error: 'the receiver answered 410' })]);
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
    now: () => NOW,
  });
  deliverer.start();
  await within(
    'the event reaching the receiver',
    receiver.next((request) => request.json.id === 8),
  );
  await deliverer.stop();
  expect(outcomes).toEqual([
    { retry: 8, delayMs: 0, error: 'the receiver: the delivery was cancelled (Freight is stopping)' },
  ]);
  receiver.answer = () => ({ status: 204 });
});
