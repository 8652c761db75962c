/**
 * The gate's rules (WEBHOOK_PRE_FINISH), without a network or a database: what each answer of the receiver means,
 * what is recorded for it and in which order (the object goes before the refusal is recorded), how long an upload
 * waits before it is asked again, and where `awaiting_approval` stands in the lifecycle's groups.
 */
import { describe, expect, test } from 'vitest';
import type { FileUpload } from '../../src/db/schema.js';
import { FreightError } from '../../src/errors.js';
import { ASK_AGAIN, decide, nextAskDelay, type ApprovalRecords, type Verdict } from '../../src/uploads/approval.js';
import {
  ASSEMBLED,
  ENDED,
  HOLDING_PARTIALS,
  OPEN,
  TRANSITIONS,
  goneReason,
  hasEnded,
  isAssembled,
  isOpen,
} from '../../src/lifecycle.js';
import { verdictOf } from '../../src/webhooks/pre-finish.js';

const answer = (status: number, body = '', contentType?: string) => ({ status, body, contentType });

describe('what an answer means', () => {
  test('2xx approves, 4xx refuses with the receiver message, anything else is no answer yet', () => {
    expect(verdictOf(answer(200))).toEqual({ kind: 'approved' });
    expect(verdictOf(answer(204))).toEqual({ kind: 'approved' });
    expect(verdictOf(answer(422, JSON.stringify({ message: 'infected: EICAR' }), 'application/json'))).toEqual({
      kind: 'rejected',
      status: 422,
      message: 'infected: EICAR',
    });
    expect(verdictOf(answer(403, 'not\r\nallowed', 'text/plain'))).toEqual({
      kind: 'rejected',
      status: 403,
      message: 'not allowed',
    });
    expect(verdictOf(answer(400))).toEqual({
      kind: 'rejected',
      status: 400,
      message: 'the upload was refused (the pre-finish check answered 400)',
    });
    for (const status of [500, 502, 503, 302, 100]) {
      expect(verdictOf(answer(status))).toEqual({ kind: 'unanswered', reason: `answered ${status}` });
    }
  });
});

describe('the backoff between asks', () => {
  test('as long again as the upload has waited: 5 s at first, doubling, an hour at most; the second half random', () => {
    const low = () => 0;
    const high = () => 1;
    expect(nextAskDelay(0, high)).toBe(ASK_AGAIN.baseMs);
    expect(nextAskDelay(0, low)).toBe(ASK_AGAIN.baseMs / 2);
    expect(nextAskDelay(40_000, high)).toBe(40_000);
    expect(nextAskDelay(40_000, low)).toBe(20_000);
    expect(nextAskDelay(10 * 3_600_000, high)).toBe(ASK_AGAIN.capMs);
    // A receiver that never answers is asked ever more rarely: waits that add up to a day take few asks.
    let waited = 0;
    let asks = 0;
    while (waited < 86_400_000) {
      waited += nextAskDelay(waited, high);
      asks++;
    }
    expect(asks).toBeLessThan(40);
  });
});

function recorder(): ApprovalRecords & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    approve: async (id) => {
      log.push(`approve ${id}`);
      return { ...upload, status: 'completed' };
    },
    refuse: async (id, reason) => {
      log.push(`refuse ${id}: ${reason}`);
      return { ...upload, status: 'rejected', error: reason };
    },
    askAgainAt: async (id, at, reason) => {
      log.push(`ask again ${id} at ${at.toISOString()}: ${reason}`);
      return true;
    },
    findForStorage: async () => upload,
  };
}

const T0 = new Date('2026-12-01T10:00:00.000Z');
const upload = {
  id: '0b0b0b0b-0000-4000-8000-000000000001',
  status: 'awaiting_approval',
  updatedAt: T0,
} as FileUpload;

const deciding = (verdict: Verdict, now: Date, removeObject: () => Promise<void> = async () => {}) => {
  const records = recorder();
  const check = { timeoutMs: 1_000, ask: async () => verdict };
  return {
    records,
    result: decide({ records, check, now: () => now, random: () => 1 }, upload, removeObject),
  };
};

describe('a decision', () => {
  test('approved: completed', async () => {
    const { records, result } = deciding({ kind: 'approved' }, T0);
    expect((await result).status).toBe('completed');
    expect(records.log).toEqual([`approve ${upload.id}`]);
  });

  test('refused: the object is removed first, then the refusal recorded; the client gets the status and message', async () => {
    const order: string[] = [];
    const { records, result } = deciding({ kind: 'rejected', status: 422, message: 'not a PDF' }, T0, async () => {
      order.push('remove');
    });
    const error = await result.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FreightError);
    expect(error).toMatchObject({ code: 'ERR_UPLOAD_REJECTED', status: 422, message: 'not a PDF' });
    expect(order).toEqual(['remove']);
    expect(records.log).toEqual([`refuse ${upload.id}: the pre-finish check refused it: not a PDF`]);
  });

  test('refused, but the object cannot be removed now: it stays awaiting, asked again soon (the refusal is not lost)', async () => {
    const { records, result } = deciding({ kind: 'rejected', status: 403, message: 'no' }, T0, async () => {
      throw new Error('S3 is down');
    });
    await expect(result).rejects.toThrow('S3 is down');
    expect(records.log).toHaveLength(1);
    expect(records.log[0]).toMatch(
      /^ask again .* at 2026-12-01T10:00:05\.000Z: refused by the pre-finish check \(no\)/,
    );
  });

  test('no answer: still awaiting, asked again after as long as it has waited (at least 5 s); the reason is kept', async () => {
    const first = deciding({ kind: 'unanswered', reason: 'did not answer (no answer within 1 s)' }, T0);
    const waiting = await first.result;
    expect(waiting.status).toBe('awaiting_approval');
    expect(waiting.error).toBe(
      'awaiting approval: the pre-finish check did not answer (no answer within 1 s); asked again at 2026-12-01T10:00:05.000Z',
    );
    const later = deciding({ kind: 'unanswered', reason: 'answered 503' }, new Date(T0.getTime() + 80_000));
    await later.result;
    expect(later.records.log).toEqual([
      `ask again ${upload.id} at 2026-12-01T10:02:40.000Z: awaiting approval: the pre-finish check answered 503; asked again at 2026-12-01T10:02:40.000Z`,
    ]);
  });
});

describe('awaiting_approval in the lifecycle', () => {
  test('assembled: neither open (no bytes, no expiry, not counted as open) nor ended (not pruned, not gone)', () => {
    expect(isOpen('awaiting_approval')).toBe(false);
    expect(hasEnded('awaiting_approval')).toBe(false);
    expect(isAssembled('awaiting_approval')).toBe(true);
    expect(isAssembled('completed')).toBe(true);
    expect(isAssembled('uploading')).toBe(false);
    expect(goneReason('awaiting_approval', null)).toBeUndefined();
    expect([...OPEN, ...ENDED]).not.toContain('awaiting_approval');
    expect(ASSEMBLED).toEqual(['awaiting_approval', 'completed']);
    // A final upload awaiting approval may still complete: its partials stay held.
    expect(HOLDING_PARTIALS).toContain('awaiting_approval');
  });

  test('its transitions: only from an open upload into it; out of it to completed, rejected, or aborted (tus DELETE)', () => {
    expect(TRANSITIONS.awaitApproval).toEqual({ from: OPEN, to: 'awaiting_approval' });
    expect(TRANSITIONS.approve).toMatchObject({
      from: ['awaiting_approval'],
      to: 'completed',
      event: 'upload.completed',
    });
    expect(TRANSITIONS.refuse).toMatchObject({ from: ['awaiting_approval'], to: 'rejected', event: 'upload.failed' });
    expect(TRANSITIONS.terminate.from).toContain('awaiting_approval');
    const out = Object.values(TRANSITIONS).filter((transition) =>
      (transition.from as readonly string[]).includes('awaiting_approval'),
    );
    expect(out.map((transition) => transition.to).sort()).toEqual(['aborted', 'completed', 'rejected']);
    // Neither expiry nor a failed attempt nor a loss applies to it: its bytes are all in, assembled.
    for (const name of ['expire', 'fail', 'lose', 'progress'] as const) {
      expect(TRANSITIONS[name].from).not.toContain('awaiting_approval');
    }
  });
});
