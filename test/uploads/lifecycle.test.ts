/**
 * The lifecycle table (src/uploads/lifecycle.ts) the repository builds its guarded statements from: each
 * transition's statuses, event and metric, the groups, and the predicates every caller asks.
 */
import { describe, expect, test } from 'vitest';
import {
  ENDED,
  HOLDING_PARTIALS,
  OPEN,
  TRANSITIONS,
  UPLOAD_EVENTS,
  UPLOAD_STATUSES,
  goneReason,
  hasEnded,
  isCompleted,
  isOpen,
  type UploadStatus,
} from '../../src/uploads/lifecycle.js';

const open = ['pending', 'uploading', 'failed'];

describe('the transitions', () => {
  test.each([
    ['progress', open, 'uploading', undefined, undefined],
    ['fail', open, 'failed', 'upload.failed', 'failed'],
    ['complete', open, 'completed', 'upload.completed', 'completed'],
    ['abort', open, 'aborted', 'upload.aborted', 'aborted'],
    ['terminate', ['completed'], 'aborted', 'upload.aborted', 'aborted'],
    ['expire', open, 'expired', 'upload.expired', 'expired'],
    ['lose', open, 'lost', 'upload.failed', 'failed'],
    ['reject', open, 'rejected', 'upload.failed', 'failed'],
    ['giveUp', open, 'given_up', 'upload.failed', 'failed'],
  ])('%s: from %j to %s, event %s, counted as %s', (name, from, to, event, counted) => {
    const transition = TRANSITIONS[name as keyof typeof TRANSITIONS];
    expect([...transition.from].sort()).toEqual([...from].sort());
    expect(transition.to).toBe(to);
    expect('event' in transition ? transition.event : undefined).toBe(event);
    expect('counted' in transition ? transition.counted : undefined).toBe(counted);
  });

  test('there are no others', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual(
      ['abort', 'complete', 'expire', 'fail', 'giveUp', 'lose', 'progress', 'reject', 'terminate'].sort(),
    );
  });

  test('no transition leaves an ended upload; only termination leaves a completed one', () => {
    for (const [name, transition] of Object.entries(TRANSITIONS)) {
      for (const from of transition.from) {
        expect(hasEnded(from), `${name} from ${from}`).toBe(false);
        if (isCompleted(from)) expect(name).toBe('terminate');
      }
    }
  });

  test('every status and event a transition names is declared; every change that ends an upload tells a receiver', () => {
    for (const [name, transition] of Object.entries(TRANSITIONS)) {
      expect(UPLOAD_STATUSES, name).toContain(transition.to);
      if ('event' in transition) expect(UPLOAD_EVENTS, name).toContain(transition.event);
      if (hasEnded(transition.to) || isCompleted(transition.to)) expect('event' in transition, name).toBe(true);
    }
  });
});

describe('the groups and predicates', () => {
  test('open and ended are apart; completed is neither; a final holds its partials while open or completed', () => {
    expect([...OPEN]).toEqual(open);
    expect([...ENDED].sort()).toEqual(['aborted', 'expired', 'given_up', 'lost', 'rejected']);
    expect(OPEN.filter((status) => (ENDED as readonly string[]).includes(status))).toEqual([]);
    expect([...HOLDING_PARTIALS].sort()).toEqual([...open, 'completed'].sort());
  });

  test.each(UPLOAD_STATUSES.map((status) => [status]))('%s: the predicates agree with the groups', (status) => {
    expect(isOpen(status)).toBe((OPEN as readonly UploadStatus[]).includes(status));
    expect(hasEnded(status)).toBe((ENDED as readonly UploadStatus[]).includes(status));
    expect(isCompleted(status)).toBe(status === 'completed');
    expect([isOpen(status), hasEnded(status), isCompleted(status)].filter(Boolean).length).toBeLessThanOrEqual(1);
  });

  test('an ended upload says why it is gone (410); any other has no such reason', () => {
    expect(goneReason('aborted', null)).toBe('the upload was terminated');
    expect(goneReason('expired', null)).toBe('the upload expired');
    expect(goneReason('lost', null)).toBe('the upload cannot be resumed: storage lost its bytes');
    expect(goneReason('rejected', 'not the announced SHA-256')).toBe(
      'the upload cannot be resumed: not the announced SHA-256',
    );
    expect(goneReason('given_up', 'part 3 is missing')).toBe('the upload cannot be resumed: part 3 is missing');
    for (const status of UPLOAD_STATUSES) {
      expect(goneReason(status, null) !== undefined, status).toBe(hasEnded(status));
    }
  });
});
