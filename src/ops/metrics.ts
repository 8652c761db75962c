/**
 * Freight's Prometheus metrics (prom-client): one registry per app, so that tests can build several apps in one
 * process, and every metric object declared here, once. Code that counts receives the app's Metrics (decorated on
 * the Fastify instance as `app.metrics`, passed to services in their options) and calls `.inc()` / `.observe()` /
 * `.set()` on the object; GET /metrics (metrics-route.ts) writes the registry in Prometheus's text format.
 *
 * Labels are bounded sets: a protocol, a route pattern (never a raw URL), an S3 operation, a repository method.
 */
import type { CountedChange } from '../lifecycle.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueryObserver } from '../db/availability.js';
import type { UploadProtocol } from '../db/schema.js';

/** What the part-slot gauges read when scraped: the tus store's slots on S3 (src/tus/s3/slots.ts). */
export interface PartSlotCounts {
  readonly capacity: number;
  readonly inUse: number;
  readonly waiting: number;
  /** Bytes in this process's part files now. */
  readonly tempBytes: number;
}

/** Upload state changes counted by protocol (the upload-state service counts them, src/uploads/service.ts). */
/** What the metrics count per upload: the lifecycle's counted changes. */
export type UploadEvent = CountedChange;

const PROTOCOLS: readonly UploadProtocol[] = ['tus', 'direct'];

/** Seconds: requests range from a HEAD answered in a millisecond to a PATCH streaming for minutes. */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const S3_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180];
const DB_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LOCK_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 3, 5, 10, 30, 60];
const JANITOR_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900];

export class Metrics {
  readonly registry = new Registry();

  // --- uploads -------------------------------------------------------------------------------------------------
  readonly uploadsCreated: Counter<'protocol'>;
  readonly uploadsCompleted: Counter<'protocol'>;
  /** Each time an upload is marked failed (an attempt failed in storage; it stays resumable) or lost. */
  readonly uploadsFailed: Counter<'protocol'>;
  readonly uploadsAborted: Counter<'protocol'>;
  readonly uploadsExpired: Counter<'protocol'>;
  /** tus bytes, counted when stored (when the stored offset moves), not when they arrive. */
  readonly tusBytesReceived: Counter;
  /** tus requests writing bytes right now (PATCH, and POST with a body). */
  readonly tusWritesInProgress: Gauge;

  // --- HTTP, S3, database, locks --------------------------------------------------------------------------------
  readonly httpRequestDuration: Histogram<'method' | 'route' | 'status'>;
  readonly s3RequestDuration: Histogram<'operation' | 'outcome'>;
  readonly s3Errors: Counter<'operation' | 'error'>;
  readonly dbQueryDuration: Histogram<'query' | 'outcome'>;
  readonly dbQueryErrors: Counter<'query' | 'reason'>;
  readonly dbQueriesInFlight: Gauge;
  readonly lockWait: Histogram<'outcome'>;

  // --- janitor and webhooks (counted by their own code) -------------------------------------------------------
  /** One per janitor run; outcome "ok" or "failed". */
  readonly janitorRuns: Counter<'outcome'>;
  /** What runs removed; what: "expired_uploads", "orphaned_multipart_uploads", "pruned_uploads". */
  readonly janitorRemoved: Counter<'what'>;
  readonly janitorRunDuration: Histogram;
  /** Webhook events acknowledged by WEBHOOK_URL (2xx), by event ("upload.completed" …). */
  readonly webhookDeliveries: Counter<'event'>;
  /** Delivery attempts that failed (non-2xx, timeout, refused); each is retried later. */
  readonly webhookFailures: Counter<'event'>;

  private partSlots: PartSlotCounts | undefined;

  constructor() {
    const registers = [this.registry];
    // The event loop's delay sampled every 100 ms, not every 10 (prom-client's default): an idle server wakes 10
    // times a second for it, not 100 (a direct upload's server is mostly idle; its CPU is measured per GiB).
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
    const byProtocol = (event: UploadEvent, help: string) => {
      const counter = new Counter({
        name: `freight_uploads_${event}_total`,
        help,
        labelNames: ['protocol'] as const,
        registers,
      });
      for (const protocol of PROTOCOLS) counter.inc({ protocol }, 0);
      return counter;
    };
    this.uploadsCreated = byProtocol('created', 'Uploads created');
    this.uploadsCompleted = byProtocol('completed', 'Uploads completed (assembled and verified)');
    this.uploadsFailed = byProtocol(
      'failed',
      'Times an upload was marked failed (storage failed an attempt; it stays resumable) or lost',
    );
    this.uploadsAborted = byProtocol('aborted', 'Uploads aborted (terminated by their owner, or by the server)');
    this.uploadsExpired = byProtocol('expired', 'Unfinished uploads expired (UPLOAD_EXPIRY)');
    this.tusBytesReceived = new Counter({
      name: 'freight_tus_bytes_received_total',
      help: 'Bytes of tus uploads stored (counted when the stored offset moves)',
      registers,
    });
    this.tusWritesInProgress = new Gauge({
      name: 'freight_tus_writes_in_progress',
      help: 'tus requests writing bytes now (PATCH, POST with a body)',
      registers,
    });

    this.httpRequestDuration = new Histogram({
      name: 'freight_http_request_duration_seconds',
      help: 'HTTP requests by method, route pattern and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.s3RequestDuration = new Histogram({
      name: 'freight_s3_request_duration_seconds',
      help: "S3 calls by operation, the SDK's retries included; outcome ok or error",
      labelNames: ['operation', 'outcome'] as const,
      buckets: S3_BUCKETS,
      registers,
    });
    this.s3Errors = new Counter({
      name: 'freight_s3_errors_total',
      help: 'S3 calls that failed, by operation and error (S3 error name or network code)',
      labelNames: ['operation', 'error'] as const,
      registers,
    });
    this.dbQueryDuration = new Histogram({
      name: 'freight_db_query_duration_seconds',
      help: 'Database calls by repository method; outcome ok or error',
      labelNames: ['query', 'outcome'] as const,
      buckets: DB_BUCKETS,
      registers,
    });
    this.dbQueryErrors = new Counter({
      name: 'freight_db_query_errors_total',
      help: 'Database calls that failed, by repository method; reason unavailable (down, silent past DATABASE_TIMEOUT) or error',
      labelNames: ['query', 'reason'] as const,
      registers,
    });
    this.dbQueriesInFlight = new Gauge({
      name: 'freight_db_queries_in_flight',
      help: 'Database calls waiting for an answer now (postgres.js has at most 10 connections)',
      registers,
    });
    this.lockWait = new Histogram({
      name: 'freight_lock_wait_seconds',
      help: "Time to acquire a tus upload's lock; outcome acquired, timeout (423) or failed",
      labelNames: ['outcome'] as const,
      buckets: LOCK_BUCKETS,
      registers,
    });

    const slots = () => this.partSlots;
    new Gauge({
      name: 'freight_part_slots',
      help: 'Part slots of this process (S3_PART_CONCURRENCY; 0 on the file store)',
      registers,
      collect() {
        this.set(slots()?.capacity ?? 0);
      },
    });
    new Gauge({
      name: 'freight_part_slots_in_use',
      help: 'Part slots held by pieces being sent to S3',
      registers,
      collect() {
        this.set(slots()?.inUse ?? 0);
      },
    });
    new Gauge({
      name: 'freight_part_slots_waiting',
      help: 'Requests waiting for a part slot',
      registers,
      collect() {
        this.set(slots()?.waiting ?? 0);
      },
    });
    new Gauge({
      name: 'freight_temp_bytes_buffered',
      help: "Bytes in this process's part files on temp disk",
      registers,
      collect() {
        this.set(slots()?.tempBytes ?? 0);
      },
    });

    this.janitorRuns = new Counter({
      name: 'freight_janitor_runs_total',
      help: 'Janitor runs, by outcome (ok, failed)',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.janitorRemoved = new Counter({
      name: 'freight_janitor_removed_total',
      help: 'What janitor runs removed: expired_uploads, orphaned_multipart_uploads, pruned_uploads',
      labelNames: ['what'] as const,
      registers,
    });
    this.janitorRunDuration = new Histogram({
      name: 'freight_janitor_run_duration_seconds',
      help: 'Duration of janitor runs',
      buckets: JANITOR_BUCKETS,
      registers,
    });
    this.webhookDeliveries = new Counter({
      name: 'freight_webhook_deliveries_total',
      help: 'Webhook events delivered (acknowledged with 2xx), by event',
      labelNames: ['event'] as const,
      registers,
    });
    this.webhookFailures = new Counter({
      name: 'freight_webhook_delivery_failures_total',
      help: 'Webhook delivery attempts that failed (retried later), by event',
      labelNames: ['event'] as const,
      registers,
    });
  }

  /** The tus store's part slots, read at each scrape. */
  watchPartSlots(slots: PartSlotCounts): void {
    this.partSlots = slots;
  }

  /** An upload state change (called by the upload-state service). */
  countUpload(event: UploadEvent, protocol: UploadProtocol, by = 1): void {
    const counter = {
      created: this.uploadsCreated,
      completed: this.uploadsCompleted,
      failed: this.uploadsFailed,
      aborted: this.uploadsAborted,
      expired: this.uploadsExpired,
    }[event];
    counter.inc({ protocol }, by);
  }

  /** One S3 call: its operation ("UploadPart"), how long it took, and its error if it failed. */
  observeS3Call(operation: string, seconds: number, error?: unknown): void {
    this.s3RequestDuration.observe({ operation, outcome: error === undefined ? 'ok' : 'error' }, seconds);
    if (error !== undefined) this.s3Errors.inc({ operation, error: errorName(error) });
  }

  /** Times the repository's calls (given to withDeadlines, src/db/availability.ts). */
  queryObserver(): QueryObserver {
    return {
      started: () => this.dbQueriesInFlight.inc(),
      finished: (query, seconds, failure) => {
        this.dbQueriesInFlight.dec();
        this.dbQueryDuration.observe({ query, outcome: failure === undefined ? 'ok' : 'error' }, seconds);
        if (failure !== undefined) this.dbQueryErrors.inc({ query, reason: failure });
      },
    };
  }
  /** A janitor run, timed and counted with what it removed (a dry run removes nothing). */
  async countJanitorRun<Report extends JanitorRunCounts>(run: () => Promise<Report>): Promise<Report> {
    const done = this.janitorRunDuration.startTimer();
    try {
      const report = await run();
      this.janitorRuns.inc({ outcome: report.failures > 0 ? 'failed' : 'ok' });
      if (report.ran && !report.dryRun) {
        this.janitorRemoved.inc({ what: 'expired_uploads' }, report.expired.tus + report.expired.direct);
        this.janitorRemoved.inc({ what: 'orphaned_multipart_uploads' }, report.orphanMultipartUploadsAborted);
        this.janitorRemoved.inc({ what: 'pruned_uploads' }, report.uploadsPruned);
      }
      return report;
    } catch (error) {
      this.janitorRuns.inc({ outcome: 'failed' });
      throw error;
    } finally {
      done();
    }
  }
}

/** What the metrics count of a janitor run (its report has more). */
export interface JanitorRunCounts {
  ran: boolean;
  dryRun: boolean;
  failures: number;
  expired: { tus: number; direct: number };
  orphanMultipartUploadsAborted: number;
  uploadsPruned: number;
}

/** A bounded name for an error: the S3 error's name (NoSuchKey, SlowDown …) or the network code (ECONNREFUSED). */
function errorName(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' && /^[A-Za-z]{1,64}$/.test(name) ? name : 'Error';
}

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's metrics (src/ops/metrics.ts). */
    metrics: Metrics;
  }
}
