/**
 * The rules of tus concatenation that need no server: what an Upload-Concat header may name (CONCAT_MAX_PARTIALS,
 * each partial once), how failed assembly attempts are counted and when a final upload is given up, and the
 * assembler's bounds (CONCAT_CONCURRENCY at once, one entry per final, a failure retried, a database that cannot
 * record the failure counting nothing).
 */
import { describe, expect, test } from 'vitest';
import type { FileUpload } from '../../src/db/schema.js';
import { type FreightError, databaseUnavailable } from '../../src/errors.js';
import { FinalAssemblies, retryDelayMs } from '../../src/tus/assembly.js';
import { partialIdsOf } from '../../src/tus/concat.js';
import type { UploadLocker } from '../../src/tus/lockers/locker.js';
import { parseUploadConcat } from '../../src/tus/protocol.js';
import type { FreightStore } from '../../src/tus/upload-record.js';
import { afterFailedAssembly } from '../../src/lifecycle.js';
import type { UploadService } from '../../src/uploads/service.js';
import { silentLogger } from '../helpers/harness.js';

const A = '6f0f3c8e-0000-4000-8000-00000000000a';
const B = '6f0f3c8e-0000-4000-8000-00000000000b';

const failure = (fn: () => unknown): FreightError | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    return error as FreightError;
  }
};

describe('Upload-Concat: final', () => {
  test('at most CONCAT_MAX_PARTIALS URLs: one more is 400, saying the bound', () => {
    const urls = [`/files/${A}`, `/files/${B}`];
    expect(parseUploadConcat(`final;${urls.join(' ')}`, 2)).toEqual({ kind: 'final', urls });
    const over = failure(() => parseUploadConcat(`final;${urls.join(' ')} /files/x`, 2));
    expect(over?.status).toBe(400);
    expect(over?.message).toMatch(/names 3 partial uploads; this server joins at most 2/);
  });

  test('a URL written twice is 400 before anything is looked up', () => {
    const repeated = failure(() => parseUploadConcat(`final;/files/${A} /files/${B} /files/${A}`, 10));
    expect(repeated?.status).toBe(400);
    expect(repeated?.message).toContain(`/files/${A} more than once`);
  });

  test('two URLs naming one upload (absolute and relative, any case) are one partial named twice: 400', () => {
    expect(partialIdsOf([`/files/${A}`, `http://example.com/files/${B}/`])).toEqual([A, B]);
    const twice = failure(() => partialIdsOf([`/files/${A}`, `https://freight.example/files/${A.toUpperCase()}`]));
    expect(twice?.status).toBe(400);
    expect(twice?.message).toMatch(/one partial upload twice/);
    expect(failure(() => partialIdsOf(['/elsewhere/x']))?.status).toBe(404);
  });

  test('the header itself: partial, or final with at least one URL', () => {
    expect(parseUploadConcat('partial')).toEqual({ kind: 'partial' });
    expect(failure(() => parseUploadConcat('final;'))?.status).toBe(400);
    expect(failure(() => parseUploadConcat('final'))?.status).toBe(400);
  });
});

describe('attempt accounting', () => {
  test('a failed attempt counts; the CONCAT_MAX_ATTEMPTS-th gives the final up', () => {
    expect(afterFailedAssembly(0, 3)).toEqual({ attempts: 1, status: 'failed' });
    expect(afterFailedAssembly(1, 3)).toEqual({ attempts: 2, status: 'failed' });
    expect(afterFailedAssembly(2, 3)).toEqual({ attempts: 3, status: 'given_up' });
    expect(afterFailedAssembly(0, 1)).toEqual({ attempts: 1, status: 'given_up' });
  });

  test('a permanent failure (a partial upload gone) gives up at once', () => {
    expect(afterFailedAssembly(0, 10, true)).toEqual({ attempts: 1, status: 'given_up' });
  });

  test('retries come 5 s after a failure, doubling, never more than 5 min apart', () => {
    expect([0, 1, 2, 3, 6, 7, 20].map(retryDelayMs)).toEqual([
      5_000, 10_000, 20_000, 40_000, 300_000, 300_000, 300_000,
    ]);
  });
});

/** A final upload row with what the assembler reads. */
const finalRow = (id: string, attempts = 0): FileUpload =>
  ({ id, status: 'pending', concat: 'final', concatPartials: [A], assemblyAttempts: attempts }) as FileUpload;

interface Fakes {
  assemblies: FinalAssemblies;
  running: () => number;
  most: () => number;
  recorded: Array<{ id: string; reason: string; permanent: boolean }>;
  finish: (id: string) => void;
  fail: (id: string, error: unknown) => void;
}

/** An assembler over a store whose assemblies end when the test says, and a service that records in memory. */
function fakes(options: { concurrency: number; maxAttempts?: number; recordFails?: boolean }): Fakes {
  const ends = new Map<string, { resolve(): void; reject(error: unknown): void }>();
  let running = 0;
  let most = 0;
  const recorded: Fakes['recorded'] = [];
  const rows = new Map<string, FileUpload>();
  const row = (id: string) => rows.get(id) ?? rows.set(id, finalRow(id)).get(id)!;
  const uploads = {
    access: {
      findForStorage: async (id: string) => row(id),
    },
    finals: {
      partialsOf: async (final: FileUpload) =>
        new Map((final.concatPartials ?? []).map((id) => [id, { id, status: 'completed' } as FileUpload])),
      recordFailedAttempt: async (final: FileUpload, reason: string, max: number, permanent: boolean) => {
        if (options.recordFails) throw databaseUnavailable('the database is down');
        recorded.push({ id: final.id, reason, permanent });
        const outcome = afterFailedAssembly(final.assemblyAttempts, max, permanent);
        rows.set(final.id, { ...final, assemblyAttempts: outcome.attempts, status: outcome.status });
        return outcome.status;
      },
    },
  } as unknown as UploadService;
  const store = {
    concatenate: (final: FileUpload) => {
      running++;
      most = Math.max(most, running);
      return new Promise<void>((resolve, reject) => ends.set(final.id, { resolve, reject })).finally(() => running--);
    },
    abandon: async () => {},
  } as unknown as FreightStore;
  const locker = {
    newLock: () => ({ lock: async () => {}, unlock: async () => {} }),
  } as unknown as UploadLocker;
  const assemblies = new FinalAssemblies({
    uploads,
    store,
    locker,
    log: silentLogger(),
    concurrency: options.concurrency,
    maxAttempts: options.maxAttempts ?? 10,
  });
  return {
    assemblies,
    running: () => running,
    most: () => most,
    recorded,
    finish: (id) => ends.get(id)?.resolve(),
    fail: (id, error) => ends.get(id)?.reject(error),
  };
}

const tick = async () => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('the assembler', () => {
  test('runs at most CONCAT_CONCURRENCY assemblies at once; the others wait their turn', async () => {
    const f = fakes({ concurrency: 2 });
    const ids = ['f1', 'f2', 'f3', 'f4', 'f5'];
    for (const id of ids) f.assemblies.assemble(id);
    await tick();
    expect(f.running()).toBe(2);
    for (const id of ids) {
      f.finish(id);
      await tick();
    }
    await f.assemblies.settled();
    expect(f.most()).toBe(2);
    expect(f.running()).toBe(0);
    f.assemblies.close();
  });

  test('a final asked for while it waits or runs is not queued twice', async () => {
    const f = fakes({ concurrency: 1 });
    f.assemblies.assemble('f1');
    f.assemblies.assemble('f1');
    f.assemblies.assemble('f2');
    f.assemblies.assemble('f2');
    await tick();
    f.finish('f1');
    await tick();
    f.finish('f2');
    await f.assemblies.settled();
    expect(f.most()).toBe(1);
    f.assemblies.close();
  });

  test('a failed attempt is counted with its message (never [object Object]); the last one gives up', async () => {
    const f = fakes({ concurrency: 1, maxAttempts: 2 });
    f.assemblies.assemble('f1');
    await tick();
    // What @tus/file-store throws: a plain object.
    f.fail('f1', { status_code: 500, body: 'Something went wrong when trying to write the file\n' });
    await f.assemblies.settled();
    expect(f.recorded).toEqual([
      { id: 'f1', reason: 'Something went wrong when trying to write the file', permanent: false },
    ]);
    // The retry (planned 5 s later) is asked for now, as the janitor does.
    f.assemblies.assemble('f1');
    await tick();
    f.fail('f1', new Error('NoSuchKey'));
    await f.assemblies.settled();
    expect(f.recorded.map((entry) => entry.reason)).toEqual([
      'Something went wrong when trying to write the file',
      'NoSuchKey',
    ]);
    f.assemblies.close();
  });

  test('a failure that cannot be recorded (the database down) counts nothing', async () => {
    const f = fakes({ concurrency: 1, recordFails: true });
    f.assemblies.assemble('f1');
    await tick();
    f.fail('f1', new Error('connection refused'));
    await f.assemblies.settled();
    expect(f.recorded).toEqual([]);
    f.assemblies.close();
  });
});
