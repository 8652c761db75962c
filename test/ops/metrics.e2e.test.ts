/** GET /metrics: what an operator's Prometheus sees move after uploads, and only with METRICS_TOKEN when it is set. */
import { describe, expect, test } from 'vitest';
import { uploadDirect } from '../../src/client/direct-upload.js';
import { bufferSource } from '../../src/client/sources.js';
import { MiB, errorCodeOf, freightOnS3, randomData, tokenFor, uniqueUser } from '../helpers/harness.js';
import { scrape, type Scrape } from '../helpers/metrics.js';
import { startTusUpload, uploadIdOf } from '../helpers/tus-client.js';

const METRICS_TOKEN = 'metrics-token-0123456789';
const ctx = freightOnS3('freight-metrics', { METRICS_TOKEN, S3_PART_CONCURRENCY: '3' });

/** What moved between two scrapes. */
const delta = (first: Scrape, second: Scrape) => (name: string, labels?: Record<string, string>) =>
  second(name, labels) - first(name, labels);

describe('GET /metrics', () => {
  test('with METRICS_TOKEN set: 401 without the token or with another, the text format with it', async () => {
    const bare = await fetch(`${ctx.freight.url}/metrics`);
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toContain('Bearer');
    expect(await errorCodeOf(bare)).toBe('ERR_UNAUTHORIZED');
    const wrong = await fetch(`${ctx.freight.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}x` } });
    expect(wrong.status).toBe(401);
    // A user's token is not the metrics token.
    const user = await fetch(`${ctx.freight.url}/metrics`, {
      headers: { Authorization: `Bearer ${await tokenFor('alice')}` },
    });
    expect(user.status).toBe(401);

    const res = await fetch(`${ctx.freight.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const name of [
      'freight_uploads_created_total',
      'freight_uploads_completed_total',
      'freight_uploads_failed_total',
      'freight_uploads_aborted_total',
      'freight_uploads_expired_total',
      'freight_tus_bytes_received_total',
      'freight_tus_writes_in_progress',
      'freight_http_request_duration_seconds',
      'freight_s3_request_duration_seconds',
      'freight_s3_errors_total',
      'freight_db_query_duration_seconds',
      'freight_db_query_errors_total',
      'freight_db_queries_in_flight',
      'freight_lock_wait_seconds',
      'freight_part_slots',
      'freight_part_slots_in_use',
      'freight_part_slots_waiting',
      'freight_temp_bytes_buffered',
      'freight_janitor_runs_total',
      'freight_janitor_removed_total',
      'freight_webhook_deliveries_total',
      'freight_webhook_delivery_failures_total',
      'process_cpu_seconds_total',
    ]) {
      expect(text, name).toContain(`# TYPE ${name} `);
    }
  });

  test('a tus upload in three PATCHes moves the tus counters, the request, S3, database and lock metrics by what it did', async () => {
    const start = await scrape(ctx.freight.url, METRICS_TOKEN);
    const user = uniqueUser('metrics');
    const data = randomData(13 * MiB + 5);
    const run = startTusUpload(data, {
      endpoint: `${ctx.freight.url}/files/`,
      headers: { Authorization: `Bearer ${await tokenFor(user)}` },
      chunkSize: 6 * MiB,
      metadata: { filename: 'metrics.bin' },
    });
    const url = await run.done;
    const moved = delta(start, await scrape(ctx.freight.url, METRICS_TOKEN));

    expect(moved('freight_uploads_created_total', { protocol: 'tus' })).toBe(1);
    expect(moved('freight_uploads_completed_total', { protocol: 'tus' })).toBe(1);
    expect(moved('freight_uploads_created_total', { protocol: 'direct' })).toBe(0);
    expect(moved('freight_uploads_failed_total')).toBe(0);
    expect(moved('freight_tus_bytes_received_total')).toBe(data.length);
    expect(moved('freight_http_request_duration_seconds_count', { method: 'POST', status: '201' })).toBe(1);
    // The route pattern, never the upload's URL.
    expect(
      moved('freight_http_request_duration_seconds_count', { method: 'PATCH', route: '/files/*', status: '204' }),
    ).toBe(3);
    // The upload's multipart upload, and the staging one of the part its first PATCH ended in (see s3/writer.ts).
    expect(
      moved('freight_s3_request_duration_seconds_count', { operation: 'CreateMultipartUpload', outcome: 'ok' }),
    ).toBe(2);
    expect(
      moved('freight_s3_request_duration_seconds_count', { operation: 'CompleteMultipartUpload', outcome: 'ok' }),
    ).toBe(2);
    expect(
      moved('freight_s3_request_duration_seconds_count', { operation: 'UploadPart', outcome: 'ok' }),
    ).toBeGreaterThanOrEqual(1);
    expect(moved('freight_s3_errors_total')).toBe(0);
    expect(
      moved('freight_db_query_duration_seconds_count', { query: 'advanceStoredOffset', outcome: 'ok' }),
    ).toBeGreaterThanOrEqual(3);
    expect(moved('freight_db_query_errors_total')).toBe(0);
    expect(moved('freight_lock_wait_seconds_count', { outcome: 'acquired' })).toBeGreaterThanOrEqual(3);

    // Once it is over, nothing is left in flight.
    const settled = await scrape(ctx.freight.url, METRICS_TOKEN);
    expect(settled('freight_tus_writes_in_progress')).toBe(0);
    expect(settled('freight_part_slots')).toBe(3);
    expect(settled('freight_part_slots_in_use')).toBe(0);
    expect(settled('freight_part_slots_waiting')).toBe(0);
    expect(settled('freight_temp_bytes_buffered')).toBe(0);
    expect(settled('freight_db_queries_in_flight')).toBe(0);
    expect(uploadIdOf(url)).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('a terminated tus upload counts as aborted; a refused token as a 401 of its route', async () => {
    const start = await scrape(ctx.freight.url, METRICS_TOKEN);
    const auth = { Authorization: `Bearer ${await tokenFor(uniqueUser('metrics'))}`, 'Tus-Resumable': '1.0.0' };
    const created = await fetch(`${ctx.freight.url}/files/`, {
      method: 'POST',
      headers: { ...auth, 'Upload-Length': '10' },
    });
    expect(created.status).toBe(201);
    expect((await fetch(created.headers.get('location')!, { method: 'DELETE', headers: auth })).status).toBe(204);
    const refused = await fetch(`${ctx.freight.url}/api/uploads`, { headers: { Authorization: 'Bearer nonsense' } });
    expect(refused.status).toBe(401);
    const moved = delta(start, await scrape(ctx.freight.url, METRICS_TOKEN));
    expect(moved('freight_uploads_aborted_total', { protocol: 'tus' })).toBe(1);
    expect(
      moved('freight_http_request_duration_seconds_count', { method: 'DELETE', route: '/files/*', status: '204' }),
    ).toBe(1);
    expect(
      moved('freight_http_request_duration_seconds_count', { method: 'GET', route: '/api/uploads', status: '401' }),
    ).toBe(1);
  });

  test('a direct upload moves the direct counters and its routes, and no tus bytes', async () => {
    const start = await scrape(ctx.freight.url, METRICS_TOKEN);
    const data = randomData(11 * MiB);
    const result = await uploadDirect({
      endpoint: ctx.freight.url,
      token: await tokenFor(uniqueUser('metrics')),
      source: bufferSource(data),
      filename: 'direct.bin',
      partSize: 5 * MiB,
    });
    expect(result.size).toBe(data.length);
    const moved = delta(start, await scrape(ctx.freight.url, METRICS_TOKEN));
    expect(moved('freight_uploads_created_total', { protocol: 'direct' })).toBe(1);
    expect(moved('freight_uploads_completed_total', { protocol: 'direct' })).toBe(1);
    expect(moved('freight_uploads_created_total', { protocol: 'tus' })).toBe(0);
    expect(moved('freight_tus_bytes_received_total')).toBe(0);
    expect(
      moved('freight_http_request_duration_seconds_count', { method: 'POST', route: '/api/multipart', status: '201' }),
    ).toBe(1);
    expect(
      moved('freight_http_request_duration_seconds_count', {
        method: 'POST',
        route: '/api/multipart/:id/complete',
        status: '200',
      }),
    ).toBe(1);
    expect(moved('freight_s3_request_duration_seconds_count', { operation: 'CreateMultipartUpload' })).toBe(1);
    expect(moved('freight_s3_request_duration_seconds_count', { operation: 'CompleteMultipartUpload' })).toBe(1);
    // Parts go from the client to S3: the server signs them and makes no UploadPart call (nor counts presigning as one).
    expect(moved('freight_s3_request_duration_seconds_count', { operation: 'UploadPart' })).toBe(0);
  });
});
