/**
 * Delivers the outbox to WEBHOOK_URL, at least once, across restarts. Every instance runs one deliverer: it claims
 * due events (claimDue: `for update skip locked`, so instances share the work without sending one event twice
 * at once), POSTs each (signed, bounded by WEBHOOK_TIMEOUT), and records the outcome: delivered on a 2xx,
 * otherwise the next attempt after an exponential backoff with full jitter, until 24 hours after the event, when
 * it gives up and keeps the event with its last error. It never touches a request: uploads only write events.
 */
import type { FastifyBaseLogger } from 'fastify';
import { backoffDelay } from '../client/backoff.js';
import type { WebhookConfig } from '../config/index.js';
import type { WebhookOutboxRow } from '../db/schema.js';
import type { WebhookOutbox } from '../db/webhook-outbox.js';
import { eventBody } from './event.js';
import { postSigned } from './post.js';
import { BATCH, PollingLoop } from './polling-loop.js';

/**
 * The retry schedule: before attempt n + 1 (after n failed), a uniformly random wait in
 * [0, min(1 h, 5 s × 2^(n-1))): up to 5 s, 10 s, 20 s … 42 min, then up to an hour each time.
 */
export const RETRY = { baseMs: 5_000, capMs: 3_600_000 } as const;
/** An event still undelivered this long after it happened is given up on (kept, with its last error). */
export const GIVE_UP_AFTER_MS = 24 * 3_600_000;

export interface DelivererDeps {
  outbox: WebhookOutbox;
  config: WebhookConfig;
  log: FastifyBaseLogger;
  random?: () => number;
  /** The clock that says how old an event is (ms since the epoch; tests move it). Default: the wall clock. */
  now?: () => number;
  /** Told of each attempt's outcome (GET /metrics). */
  onAttempt?: ((event: WebhookOutboxRow['event'], delivered: boolean) => void) | undefined;
}

export class WebhookDeliverer extends PollingLoop {
  constructor(private readonly deps: DelivererDeps) {
    super();
  }

  /** One round: claims the due events (up to BATCH) and sends them; stop() cancels attempts in flight. */
  protected async round(): Promise<number> {
    const { outbox, config } = this.deps;
    // Past the attempt's own bound: an attempt cut short by a crash is made again after this.
    const leaseMs = config.timeoutMs + 30_000;
    const claimed = await outbox.claimDue(BATCH, leaseMs);
    await Promise.all(claimed.map((row) => this.deliver(row)));
    return claimed.length;
  }

  protected roundFailed(error: unknown): void {
    this.deps.log.warn({ err: error }, 'webhooks: could not read the outbox; trying again');
  }

  private async deliver(row: WebhookOutboxRow): Promise<void> {
    const { outbox, config, log } = this.deps;
    let failure: string;
    try {
      const answer = await postSigned(
        config,
        JSON.stringify(eventBody(row)),
        { 'Freight-Event': row.event, 'Freight-Delivery': String(row.id) },
        this.stopping.signal,
      );
      if (answer.status >= 200 && answer.status < 300) {
        this.deps.onAttempt?.(row.event, true);
        await outbox.markDelivered(row.id).catch((error: unknown) => {
          // It will be sent again once its claim runs out: at least once.
          log.warn({ err: error, webhookEventId: row.id }, 'webhooks: delivered, but could not record it');
        });
        return;
      }
      failure = `the receiver answered ${answer.status}`;
    } catch (error) {
      failure = `the receiver: ${(error as Error).message}`;
    }
    if (!this.stopping.signal.aborted) this.deps.onAttempt?.(row.event, false);
    await this.failed(row, failure).catch((error: unknown) => {
      log.warn({ err: error, webhookEventId: row.id }, 'webhooks: could not record a failed delivery');
    });
  }

  private async failed(row: WebhookOutboxRow, failure: string): Promise<void> {
    const { outbox, log, random } = this.deps;
    if (this.stopping.signal.aborted) return outbox.retryLater(row.id, 0, failure);
    const context = {
      webhookEventId: row.id,
      event: row.event,
      uploadId: row.uploadId,
      attempt: row.attempts,
      failure,
    };
    if ((this.deps.now ?? Date.now)() - row.createdAt.getTime() > GIVE_UP_AFTER_MS) {
      log.error(context, 'webhooks: giving up on an event undelivered for 24 h (kept in webhook_outbox)');
      return outbox.giveUp(row.id, failure);
    }
    const delayMs = backoffDelay(row.attempts - 1, { ...RETRY, random });
    log.warn({ ...context, retryInMs: delayMs }, 'webhooks: delivery failed; retrying');
    return outbox.retryLater(row.id, delayMs, failure);
  }
}
