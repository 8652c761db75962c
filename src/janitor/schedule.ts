/**
 * The janitor inside the server: a run every JANITOR_INTERVAL, the first one an interval after start (so that a
 * fleet restarting together does not sweep at once, and short-lived test servers never do). Each instance keeps
 * its own timer; the advisory lock lets one run at a time. On close, a run in progress stops at its next page.
 */
import type { FastifyInstance } from 'fastify';
import type { JanitorOptions } from './janitor.js';
import type { JanitorReport } from './report.js';

export function scheduleJanitor(
  app: FastifyInstance,
  run: (options: JanitorOptions) => Promise<JanitorReport>,
  intervalMs: number,
): void {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  const stop = new AbortController();

  const tick = async () => {
    running = run({ signal: stop.signal }).catch((error: unknown) => {
      if (!stop.signal.aborted) app.log.error({ err: error }, 'janitor: the run failed; the next one tries again');
    });
    await running;
    running = undefined;
    if (!stop.signal.aborted) plan();
  };
  const plan = () => {
    timer = setTimeout(tick, intervalMs);
    // A pending run never keeps the process alive.
    timer.unref();
  };

  app.addHook('onReady', async () => plan());
  app.addHook('onClose', async () => {
    stop.abort();
    clearTimeout(timer);
    await running;
  });
}
