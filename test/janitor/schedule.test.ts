/** The janitor's timer in the server: a run every interval (never two at once), none after close. */
import Fastify from 'fastify';
import { expect, test } from 'vitest';
import type { JanitorOptions } from '../../src/janitor/janitor.js';
import type { JanitorReport } from '../../src/janitor/report.js';
import { emptyReport } from '../../src/janitor/report.js';
import { scheduleJanitor } from '../../src/janitor/schedule.js';

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
  await sleep(60);
  expect(started).toEqual([]);
  await app.ready();
  await sleep(400);
  expect(started.length).toBeGreaterThanOrEqual(3);
  expect(overlapped).toBe(false);

  await app.close();
  expect(running).toBe(0);
  const runs = started.length;
  await sleep(200);
  expect(started.length).toBe(runs);
});

test('close during a run tells it to stop and waits for it', async () => {
  const app = Fastify();
  let inRun = false;
  let finished = false;
  const run = async (options: JanitorOptions): Promise<JanitorReport> => {
    inRun = true;
    try {
      while (!options.signal?.aborted) await sleep(5);
      throw options.signal.reason;
    } finally {
      finished = true;
    }
  };
  scheduleJanitor(app, run, 10);
  await app.ready();
  while (!inRun) await sleep(5);
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
  await sleep(200);
  await app.close();
  expect(calls).toBeGreaterThanOrEqual(3);
});
