/**
 * The upload-state service: the one place that decides what an upload's state is and may become. The tus path
 * (its routes and stores) and the direct path (its routes) both call it; neither writes upload state any other
 * way. Split by what callers need:
 * - `access`: the caller's upload as a request finds it (ownership, gone, expiry on sight);
 * - `ledger`: what storage holds of it (the stored offset, the parts, the S3 UploadId, the parts check);
 * - `states`: every change of its status, through the lifecycle table (src/lifecycle.ts);
 * - `finals`: final uploads of tus concatenation (their creation, the finals nobody assembles, failed attempts).
 */
import type { UploadRepository } from '../db/repository.js';
import { UploadAccess } from './access.js';
import { UploadContext, type UploadServiceOptions } from './context.js';
import { FinalUploads } from './finals.js';
import { PartsLedger } from './ledger.js';
import { UploadStates } from './states.js';

export type { Admission, NewUpload, UploadLockWatch, UploadServiceOptions } from './context.js';

export class UploadService {
  readonly states: UploadStates;
  readonly access: UploadAccess;
  readonly ledger: PartsLedger;
  readonly finals: FinalUploads;

  constructor(repo: UploadRepository, options: UploadServiceOptions) {
    const context = new UploadContext(repo, options);
    this.states = new UploadStates(context);
    this.access = new UploadAccess(context, this.states);
    this.ledger = new PartsLedger(context);
    this.finals = new FinalUploads(context, this.states);
  }
}
