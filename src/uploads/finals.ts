/**
 * Final uploads of tus concatenation, as the upload state sees them: their creation (a partial makes one final at a
 * time), the finals nobody assembles, and the accounting of failed assembly attempts (given up after
 * CONCAT_MAX_ATTEMPTS, through the lifecycle's giveUp transition).
 */
import { partialInUse } from '../errors.js';
import type { FileUpload } from '../db/schema.js';
import { HOLDING_PARTIALS, afterFailedAssembly } from '../lifecycle.js';
import type { NewUpload, UploadContext } from './context.js';
import type { UploadStates } from './states.js';

export class FinalUploads {
  constructor(
    private readonly context: UploadContext,
    private readonly states: UploadStates,
  ) {}

  /**
   * Records a final upload made of `input.concatPartials`, as states.create() records any upload (pre-create
   * check, key, per-user bounds), unless another final upload holds one of them (HOLDING_PARTIALS: one being
   * assembled, or completed): 409 ERR_PARTIAL_IN_USE naming both (`urlOf` gives a partial's URL as the client named
   * it). The check and the insert are one transaction (FinalsRepository.insertFinalUpload).
   */
  async create(
    input: NewUpload & { concatPartials: string[] },
    urlOf: (partialId: string) => string,
  ): Promise<FileUpload> {
    return this.states.create(input, async (row, limits) => {
      const result = await this.context.repo.insertFinalUpload(
        { ...row, concatPartials: input.concatPartials },
        HOLDING_PARTIALS,
        limits,
      );
      if ('held' in result) {
        throw partialInUse(
          `the partial upload ${urlOf(result.held.partial)} is part of another final upload (${result.held.final}); a partial upload makes one final upload at a time`,
        );
      }
      return result;
    });
  }

  /** The rows of a final upload's partials that still exist, by id. */
  async partialsOf(final: FileUpload): Promise<Map<string, FileUpload>> {
    const rows = await this.context.repo.findUploads(final.concatPartials ?? []);
    return new Map(rows.map((row) => [row.id, row]));
  }

  /**
   * Open final uploads that nobody assembles now (no session of any instance holds their tus lock, nor a request of
   * this process): at most `limit` of them, to be assembled (again).
   */
  async idle(limit: number): Promise<FileUpload[]> {
    const finals = await this.context.repo.finals.listIdleFinals(limit);
    const { locks } = this.context.options;
    if (!locks) return finals;
    return locks.excluding(async (held) => finals.filter((final) => !held.has(final.id)));
  }

  /**
   * One attempt at assembling a final upload failed (the caller holds its lock, so `final.assemblyAttempts` is
   * current): counted, with the reason. At `maxAttempts` failed attempts, or at once when `permanent` (a partial
   * upload is gone), the final is given up for good (giveUp: upload.failed, counted failed); otherwise it is
   * `failed` (fail) and tried again. Returns the status it is left in (undefined: it was no longer open).
   */
  async recordFailedAttempt(
    final: FileUpload,
    reason: string,
    maxAttempts: number,
    permanent = false,
  ): Promise<'failed' | 'given_up' | undefined> {
    const { attempts, status } = afterFailedAssembly(final.assemblyAttempts, maxAttempts, permanent);
    const changed = await this.context.change(final.id, status === 'given_up' ? 'giveUp' : 'fail', {
      error:
        status === 'given_up'
          ? `assembly given up after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${reason}`
          : reason,
      assemblyAttempts: attempts,
      lockedUntil: null,
    });
    return changed ? status : undefined;
  }
}
