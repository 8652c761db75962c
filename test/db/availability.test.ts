import { describe, expect, test, vi } from 'vitest';
import { withDeadlines, type QueryObserver } from '../../src/db/availability.js';

class Parts {
  async listParts(): Promise<string[]> {
    return new Promise(() => {});
  }
}

class Repository {
  readonly parts = new Parts();
  async findUpload(): Promise<string> {
    return 'row';
  }
}

describe('withDeadlines', () => {
  test('bounds and times the methods of the objects a repository holds under `nested`, like its own', async () => {
    vi.useFakeTimers();
    try {
      const finished: string[] = [];
      const observer: QueryObserver = {
        started: () => {},
        finished: (method, _s, failure) => finished.push(`${method}:${failure ?? 'ok'}`),
      };
      const repository = withDeadlines(new Repository(), 2_000, {}, observer, ['parts']);
      expect(await repository.findUpload()).toBe('row');
      const hanging = repository.parts.listParts();
      const outcome = expect(hanging).rejects.toMatchObject({ code: 'ERR_DATABASE_UNAVAILABLE' });
      await vi.advanceTimersByTimeAsync(2_000);
      await outcome;
      expect(finished).toEqual(['findUpload:ok', 'listParts:unavailable']);
    } finally {
      vi.useRealTimers();
    }
  });
});
