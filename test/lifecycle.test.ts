import { describe, expect, test } from 'vitest';
import {
  ENDED,
  goneReason,
  HOLDING_PARTIALS,
  hasEnded,
  isCompleted,
  isOpen,
  OPEN,
  TRANSITIONS,
  type Transition,
  UPLOAD_STATUSES,
  type UploadStatus,
  wasTerminated,
} from '../src/lifecycle.js';

const transitions = TRANSITIONS as Record<string, Transition>;

describe('the upload lifecycle table', () => {
  test('open and ended do not overlap; completed is neither; every status is named in a group or is completed/awaiting', () => {
    for (const status of UPLOAD_STATUSES) {
      expect(isOpen(status) && hasEnded(status)).toBe(false);
    }
    expect(isOpen('completed') || hasEnded('completed')).toBe(false);
    expect(new Set([...OPEN, ...ENDED, 'completed', 'awaiting_approval'])).toEqual(new Set(UPLOAD_STATUSES));
    // A final upload awaiting approval may still complete: it holds its partials as a completed one does.
    expect([...HOLDING_PARTIALS].sort()).toEqual([...OPEN, 'awaiting_approval', 'completed'].sort());
  });

  test.each([
    ['progress', OPEN, 'uploading', undefined, undefined],
    ['fail', OPEN, 'failed', 'upload.failed', 'failed'],
    ['complete', OPEN, 'completed', 'upload.completed', 'completed'],
    ['abort', OPEN, 'aborted', 'upload.aborted', 'aborted'],
    ['terminate', ['awaiting_approval', 'completed'], 'aborted', 'upload.aborted', 'aborted'],
    ['expire', OPEN, 'expired', 'upload.expired', 'expired'],
    ['lose', OPEN, 'lost', 'upload.failed', 'failed'],
    ['reject', OPEN, 'rejected', 'upload.failed', 'failed'],
    ['giveUp', OPEN, 'given_up', 'upload.failed', 'failed'],
    ['awaitApproval', OPEN, 'awaiting_approval', undefined, undefined],
    ['approve', ['awaiting_approval'], 'completed', 'upload.completed', 'completed'],
    ['refuse', ['awaiting_approval'], 'rejected', 'upload.failed', 'failed'],
  ] as const)('%s: from %j to %s, reporting %s and counting %s', (name, from, to, event, counted) => {
    const transition = transitions[name];
    expect(transition).toBeDefined();
    expect([...(transition?.from ?? [])].sort()).toEqual([...from].sort());
    expect(transition?.to).toBe(to);
    expect(transition?.event).toBe(event);
    expect(transition?.counted).toBe(counted);
  });

  test('nothing leaves an ended status; only termination leaves completed', () => {
    for (const [name, transition] of Object.entries(transitions)) {
      for (const status of transition.from) expect(hasEnded(status), `${name} from ${status}`).toBe(false);
      if (transition.from.includes('completed')) expect(name).toBe('terminate');
    }
  });

  test('every ended status tells its client why it is gone; open and completed ones are not gone', () => {
    for (const status of ENDED) expect(goneReason(status, null)).toMatch(/\w/);
    expect(goneReason('lost', 'the multipart upload no longer exists')).toContain(
      'the multipart upload no longer exists',
    );
    for (const status of [...OPEN, 'completed'] as UploadStatus[]) expect(goneReason(status, 'x')).toBeUndefined();
    expect(isCompleted('completed')).toBe(true);
    expect(wasTerminated('aborted')).toBe(true);
    expect(wasTerminated('expired')).toBe(false);
  });
});
