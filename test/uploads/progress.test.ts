/** WEBHOOK_PROGRESS_INTERVAL's throttle: at most one progress report per upload per interval, by an injected clock. */
import { expect, test } from 'vitest';
import { ProgressThrottle } from '../../src/uploads/progress.js';

const clock = () => {
  let now = Date.parse('2026-12-01T10:00:00Z');
  return { now: () => new Date(now), move: (ms: number) => (now += ms) };
};

test('the first progress of an upload is reported, the next only once the interval has passed', () => {
  const time = clock();
  const throttle = new ProgressThrottle(30_000, time.now);
  expect(throttle.due('a')).toBe(true);
  expect(throttle.due('b')).toBe(true);
  time.move(29_999);
  expect(throttle.due('a')).toBe(false);
  time.move(1);
  expect(throttle.due('a')).toBe(true);
  expect(throttle.due('a')).toBe(false);
});

test('over a long upload reported every second, the reports are at most elapsed / interval + 1', () => {
  const time = clock();
  const throttle = new ProgressThrottle(30_000, time.now);
  let reported = 0;
  for (let second = 0; second <= 3_600; second++) {
    if (throttle.due('long')) reported++;
    time.move(1_000);
  }
  expect(reported).toBe(121);
});

test('0 is off; a completed upload is forgotten; memory stays bounded by the uploads of the last interval', () => {
  const time = clock();
  expect(new ProgressThrottle(0, time.now).due('a')).toBe(false);
  const throttle = new ProgressThrottle(1_000, time.now);
  throttle.due('done');
  throttle.forget('done');
  expect(throttle.due('done')).toBe(true);
  for (let i = 0; i < 5_000; i++) {
    throttle.due(`upload-${i}`);
    time.move(1);
  }
  // Only the uploads reported within the last second (1,000 of them), plus at most the 1,024 kept between sweeps.
  expect(throttle.remembered).toBeLessThanOrEqual(2_025);
});
