/** Webhook delivery in the server: with WEBHOOK_URL set, a deliverer runs from start to close. */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../ops/metrics.js';
import type { Config } from '../config/index.js';
import { withDeadlines } from '../db/availability.js';
import type { Database } from '../db/client.js';
import { WebhookOutbox } from '../db/webhook-outbox.js';
import { WebhookDeliverer } from './deliverer.js';

export function deliverWebhooks(app: FastifyInstance, config: Config, database: Database, metrics?: Metrics): void {
  if (!config.webhooks) return;
  const deliverer = new WebhookDeliverer({
    outbox: withDeadlines(new WebhookOutbox(database.db), config.databaseTimeoutMs),
    config: config.webhooks,
    log: app.log,
    onAttempt: (event, delivered) =>
      (delivered ? metrics?.webhookDeliveries : metrics?.webhookFailures)?.inc({ event }),
  });
  app.addHook('onReady', async () => deliverer.start());
  // Closed before the database (onClose hooks run last-added first): a cancelled attempt is recorded as one.
  app.addHook('onClose', () => deliverer.stop());
}
