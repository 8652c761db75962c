/**
 * Part slots go to clients that send. A request takes one of the S3_PART_CONCURRENCY slots only once it has
 * buffered 256 KiB, and a body slower than UPLOAD_MIN_RATE over UPLOAD_STALL_TIMEOUT is ended by the server
 * with what arrived stored. So clients trickling bytes cost no slot, and a normal upload beside them runs at its
 * own pace. Freight on the test S3 gateway and PostgreSQL, with two slots and a 4 s stall window.
 */
import http from 'node:http';
import { describe, expect, test } from 'vitest';
import {
  eventually,
  freightOnS3,
  MiB,
  randomData,
  sha256,
  sha256OfObject,
  tokenFor,
  uniqueUser,
} from '../../helpers/harness.js';
import { scrape } from '../../helpers/metrics.js';
import { startTusUpload, uploadIdOf } from '../../helpers/tus-client.js';
import { expectStoredUpTo, storedUpload } from './stored-state.js';

const STALL_WINDOW_MS = 4_000;
const ctx = freightOnS3('freight-slots', {
  S3_PART_SIZE: '5MiB',
  S3_PART_CONCURRENCY: '2',
  UPLOAD_STALL_TIMEOUT: `${STALL_WINDOW_MS}ms`,
  // UPLOAD_MIN_RATE: the default, 16 KiB per second
});

interface Trickle {
  /** Bytes written to the request before the server answered. */
  sent: number;
  /**
   * The answer's status and Upload-Offset, and when the socket closed (ms after the request started); rejects
   * when no answer came within `answerWithinMs` (the request is then given up).
   */
  done: Promise<{ status: number; offset: number; closedAfterMs: number }>;
}

/**
 * A PATCH announcing `length` bytes (Content-Length) that writes one byte a second for `seconds` seconds, then
 * nothing more: a client whose link crawls. It stops writing once answered.
 */
function trickle(url: string, token: string, length: number, seconds: number, answerWithinMs: number): Trickle {
  const started = performance.now();
  const state: Trickle = { sent: 0, done: undefined as never };
  const request = http.request(url, {
    method: 'PATCH',
    headers: {
      Authorization: `Bearer ${token}`,
      'Tus-Resumable': '1.0.0',
      'Upload-Offset': '0',
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(length),
    },
  });
  let answered = false;
  const writeByte = () => {
    if (answered || state.sent >= seconds) return;
    request.write(Buffer.from([state.sent & 0xff]));
    state.sent++;
  };
  writeByte();
  const timer = setInterval(writeByte, 1_000);
  state.done = new Promise((resolve, reject) => {
    let answer: { status: number; offset: number } | undefined;
    const giveUp = setTimeout(() => {
      reject(new Error(`no answer to the trickling PATCH within ${answerWithinMs} ms (${state.sent} B sent)`));
      request.destroy();
    }, answerWithinMs);
    request.on('response', (response) => {
      answered = true;
      clearInterval(timer);
      answer = { status: response.statusCode ?? 0, offset: Number(response.headers['upload-offset']) };
      response.resume();
    });
    // The server closes the connection after its answer: the request body was never finished.
    request.on('error', () => {});
    request.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      if (answer) resolve({ ...answer, closedAfterMs: performance.now() - started });
      else
        reject(
          new Error(`the trickling request closed unanswered after ${Math.round(performance.now() - started)} ms`),
        );
    });
  });
  state.done.catch(() => {});
  return state;
}

async function createUpload(token: string, length: number): Promise<string> {
  const created = await fetch(`${ctx.freight.url}/files/`, {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}`, 'Upload-Length': String(length) },
  });
  expect(created.status).toBe(201);
  return created.headers.get('location')!;
}

describe('part slots', () => {
  test('a 32 MiB upload beside four clients trickling a byte a second (two slots) completes within 6 s; each trickler has every byte it sent stored and is answered and cut after the 4 s stall window', async () => {
    // Each trickler sends a byte a second for 4 s, then nothing: no byte is on its way when the server decides the
    // body stalled (a byte arriving after that decision is not stored; its client resends it from the offset the
    // answer gives), so every byte it sent must be stored.
    const TRICKLED = 4;
    const trickling = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const token = await tokenFor(uniqueUser('trickler'));
        const url = await createUpload(token, 10 * MiB);
        return { token, url, run: trickle(url, token, 10 * MiB, TRICKLED, STALL_WINDOW_MS + 5_000) };
      }),
    );
    // Every trickler's PATCH is being written, its first byte in: a server handing out slots for bytes would have
    // given both away by now.
    await eventually(async () => {
      const writing = (await scrape(ctx.freight.url))('freight_tus_writes_in_progress');
      return writing >= trickling.length ? true : undefined;
    });

    const data = randomData(32 * MiB);
    const started = performance.now();
    const normal = startTusUpload(data, {
      endpoint: `${ctx.freight.url}/files/`,
      headers: { Authorization: `Bearer ${await tokenFor(uniqueUser('sender'))}` },
    });
    const id = uploadIdOf(await normal.done);
    const normalMs = performance.now() - started;
    console.info(`[slots] 32 MiB beside four tricklers: ${Math.round(normalMs)} ms`);
    expect(normal.requests.filter((request) => request.method === 'PATCH')).toHaveLength(1);
    expect(await sha256OfObject(ctx.s3, ctx.bucket.bucket, id)).toBe(sha256(data));
    expect(normalMs).toBeLessThan(6_000);

    for (const { url, token, run } of trickling) {
      const id = uploadIdOf(url);
      // What arrived is stored: every byte it sent, once the stall window has passed.
      await eventually(
        async () => ((await storedUpload(ctx.sql, id)).storedOffset === TRICKLED ? true : undefined),
        STALL_WINDOW_MS + 3_000,
      );
      expect(run.sent).toBe(TRICKLED);
      await expectStoredUpTo(ctx.sql, ctx.s3, ctx.bucket.bucket, id, TRICKLED);
      const head = await fetch(url, {
        method: 'HEAD',
        headers: { 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${token}` },
      });
      expect(head.headers.get('upload-offset')).toBe(String(TRICKLED));
    }
    // And each trickling request is answered with that offset, its connection closed, about the stall window
    // after it began.
    for (const { run } of trickling) {
      const answer = await run.done;
      console.info(
        `[slots] trickler: ${run.sent} B sent, answered ${answer.status} at ${answer.offset}, closed after ${Math.round(answer.closedAfterMs)} ms`,
      );
      expect(answer).toMatchObject({ status: 204, offset: TRICKLED });
      expect(answer.closedAfterMs).toBeGreaterThan(STALL_WINDOW_MS);
      expect(answer.closedAfterMs).toBeLessThan(STALL_WINDOW_MS + 2_500);
    }
  });
});
