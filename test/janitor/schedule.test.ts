/**
 * The janitor's timer in the server: a run every interval (never two at once), none after close. On fake timers:
 * the test moves the clock, so what runs when is exact, however loaded the machine.
 */
import Fastify from 'fastify';
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import type { JanitorOptions } from '../../src/janitor/janitor.js';
import type { JanitorReport } from '../../src/janitor/report.js';
import { emptyReport } from '../../src/janitor/report.js';
import { scheduleJanitor } from '../../src/janitor/schedule.js';

beforeEach(() => {
  // Timers and Date only: Fastify's start-up and close run on promises and setImmediate, left real.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('runs every interval after start, one at a time, and none after close', async () => {
  const app = Fastify();
  const started: number[] = [];
  let running = 0;
  let overlapped = false;
  const run = async (): Promise<JanitorReport> => {
    started.push(Date.now());
    overlapped ||= running > 0;
    running++;
    // A run slower than the interval: the next one waits for it.
    await sleep(60);
    running--;
    return emptyReport(false, new Date());
  };
  scheduleJanitor(app, run, 30);
  await vi.advanceTimersByTimeAsync(60);
  expect(started).toEqual([]);
  await app.ready();
  const readyAt = Date.now();
  await vi.advanceTimersByTimeAsync(400);
  expect(started.length).toBeGreaterThanOrEqual(3);
  expect(overlapped).toBe(false);
  // The first an interval after start; each next one an interval after the previous one ended (60 + 30 ms).
  expect(started.map((at) => at - readyAt)).toEqual([30, 120, 210, 300, 390]);

  // The fifth run is under way (until 450 ms): close waits for it to end.
  const closing = app.close();
  await vi.advanceTimersByTimeAsync(60);
  await closing;
  expect(running).toBe(0);
  const runs = started.length;
  await vi.advanceTimersByTimeAsync(200);
  expect(started.length).toBe(runs);
});

test('close during a run tells it to stop and waits for it', async () => {
  const app = Fastify();
  let entered!: () => void;
  const inRun = new Promise<void>((resolve) => {
    entered = resolve;
  });
  let finished = false;
  const run = async (options: JanitorOptions): Promise<JanitorReport> => {
    entered();
    try {
      // Works until told to stop, however long that takes.
      await new Promise((resolve) => options.signal?.addEventListener('abort', resolve, { once: true }));
      throw options.signal?.reason;
    } finally {
      finished = true;
    }
  };
  scheduleJanitor(app, run, 10);
  await app.ready();
  await vi.advanceTimersByTimeAsync(10);
  await inRun;
  expect(finished).toBe(false);
  await app.close();
  expect(finished).toBe(true);
});

test('a run that fails is logged and the next one still comes', async () => {
  const app = Fastify({ logger: false });
  let calls = 0;
  scheduleJanitor(
    app,
    async () => {
      calls++;
      throw new Error('S3 is down');
    },
    20,
  );
  await app.ready();
  await vi.advanceTimersByTimeAsync(200);
  await app.close();
  expect(calls).toBeGreaterThanOrEqual(3);
  expect(calls).toBe(10);
});
