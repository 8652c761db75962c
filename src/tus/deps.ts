/** What every tus route is given: the one set of parts the plugin builds (no singletons, no request context). */
import type { UploadLocker } from './lockers/locker.js';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';
import type { DownloadStorage } from '../downloads/storage.js';
import type { Metrics } from '../ops/metrics.js';
import type { UploadService } from '../uploads/service.js';
import type { FreightStore } from './upload-record.js';
import type { FinalAssemblies } from './assembly.js';

export interface TusDeps {
  config: Config;
  uploads: UploadService;
  store: FreightStore;
  locker: UploadLocker;
  metrics: Metrics;
  downloads: DownloadStorage;
  /** The background assembly of final uploads (tus concatenation). */
  assemblies: FinalAssemblies;
  /** The URL of an upload, as Location headers give it. */
  urlOf(request: FastifyRequest, id: string): string;
}
