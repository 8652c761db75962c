/**
 * The whole configuration of Freight, read from environment variables only and validated once at start-up.
 * A bad value throws a ConfigError naming the variable; server.ts prints it as one line and exits 1.
 */
import path from 'node:path';
import { ConfigError } from './error.js';
import { readS3, type S3Config } from './s3.js';
import { GiB, KiB, MiB, TiB, parseDuration, parseSize } from './units.js';
import { readWebhooks, type WebhookConfig } from './webhooks.js';

export type { WebhookConfig };

export { ConfigError } from './error.js';
export type { S3Config } from './s3.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export type AuthConfig =
  | { mode: 'jwt'; secret: string }
  /** Embedded defaults on loopback with no secret given: a random secret kept in DATA_DIR. */
  | { mode: 'dev-secret'; secretFile: string }
  | { mode: 'disabled' };

/** What a bearer token must satisfy beyond its signature and `sub`. */
export interface TokenChecks {
  /** AUTH_CLOCK_TOLERANCE: leeway for `exp`, `nbf` and `iat` against this server's clock (issuers' clocks drift). */
  clockToleranceSeconds: number;
  /** AUTH_JWT_ISSUER: when set, the `iss` a token must carry. */
  issuer: string | undefined;
  /** AUTH_JWT_AUDIENCE: when set, the audience a token's `aud` must name. */
  audience: string | undefined;
}

export interface Config {
  host: string;
  port: number;
  /** Base URL clients reach this server at (behind a proxy); undefined: taken from the Host header. */
  publicUrl: string | undefined;
  dataDir: string;
  /** Where part buffers are written (TMPDIR, else DATA_DIR/tmp). */
  tempDir: string;
  /** undefined: embedded PGlite under DATA_DIR/db. */
  databaseUrl: string | undefined;
  /** undefined: local file store under DATA_DIR/files. */
  s3: S3Config | undefined;
  /** Preferred S3 part size; the planner raises it for uploads that would need more than 10,000 parts. */
  partSize: number;
  /** S3 parts (or segments) sent at once by this process: a slot is held only while a buffered piece is sent. */
  partConcurrency: number;
  /** The most bytes this process's part files may hold on temp disk at once (TEMP_DISK_LIMIT); past it, 507. */
  tempDiskLimit: number;
  /** The most parts an upload may be cut into (S3 allows 10,000; some S3-compatible servers fewer). */
  maxParts: number;
  /** The longest an S3 server may stay silent during one request (connect, send, answer, body) before it fails. */
  s3RequestTimeoutMs: number;
  /** Connect and statement timeout of every database call. */
  databaseTimeoutMs: number;
  /** How long a request waits for an upload's lock before it answers 423. */
  lockTimeoutMs: number;
  /** Keep the running SHA-256 of every tus upload (UPLOAD_SHA256); uploads that announce one are hashed anyway. */
  sha256: boolean;
  /** A PATCH body slower than this (bytes per second) over `stallTimeoutMs` is stopped; 0 turns the check off. */
  minUploadRate: number;
  stallTimeoutMs: number;
  maxUploadSize: number;
  /** Open uploads (pending, uploading, failed) one user may have at once; 0: no limit. */
  userMaxOpenUploads: number;
  /** Upload rows one user may have kept, whatever their status (ended ones until pruned); 0: no limit. */
  userMaxUploads: number;
  /** Metadata of one upload: the most bytes of all its keys and values together, and of one value (UTF-8). */
  metadata: { maxSize: number; maxValueSize: number };
  /** How long an upload may go without progress before it expires (UPLOAD_EXPIRY). */
  uploadExpiryMs: number;
  /** How long the rows of ended uploads (aborted, expired, lost, rejected) are kept before the janitor prunes them. */
  uploadRetentionMs: number;
  presignExpiresMs: number;
  /** How often the janitor runs in the server (on one instance at a time); 0: never (the CLI can still run it). */
  janitorIntervalMs: number;
  /**
   * tus concatenation: final uploads assembled at once in this process (CONCAT_CONCURRENCY), failed attempts before
   * a final is given up (CONCAT_MAX_ATTEMPTS), partial uploads one final may name (CONCAT_MAX_PARTIALS).
   */
  concat: { concurrency: number; maxAttempts: number; maxPartials: number };
  webhooks: WebhookConfig | undefined;
  auth: AuthConfig;
  tokens: TokenChecks;
  corsOrigins: '*' | string[];
  logLevel: LogLevel;
  /** METRICS_TOKEN: when set, GET /metrics answers only requests with this bearer token. */
  metricsToken: string | undefined;
}

type Env = Record<string, string | undefined>;

/** S3's own limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html). */
export const S3_LIMITS = {
  minPartSize: 5 * MiB,
  maxPartSize: 5 * GiB,
  maxParts: 10_000,
  maxObjectSize: 5 * TiB,
} as const;

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env): Config {
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };

  const int = (name: string, fallback: number, min: number, max: number): number => {
    const text = read(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(name, `must be an integer from ${min} to ${max}, got "${text}"`);
    }
    return value;
  };

  const bool = (name: string): boolean => {
    const text = read(name)?.toLowerCase();
    if (text === undefined || ['false', '0', 'no', 'off'].includes(text)) return false;
    if (['true', '1', 'yes', 'on'].includes(text)) return true;
    throw new ConfigError(name, `must be true or false, got "${read(name)}"`);
  };

  const size = (name: string, fallback: number, min: number, max: number): number => {
    const text = read(name);
    if (text === undefined) return fallback;
    const value = parseSize(text);
    if (value === undefined) {
      throw new ConfigError(name, `must be a size such as 8MiB, 5TiB or a number of bytes, got "${text}"`);
    }
    if (value < min || value > max) {
      throw new ConfigError(name, `must be from ${min} to ${max} bytes, got "${text}" (${value} bytes)`);
    }
    return value;
  };

  const duration = (name: string, fallback: number, min: number, max: number): number => {
    const text = read(name);
    if (text === undefined) return fallback;
    const value = parseDuration(text);
    if (value === undefined) {
      throw new ConfigError(
        name,
        `must be a duration such as 15m, 24h or 7d (plain numbers are seconds), got "${text}"`,
      );
    }
    if (value < min || value > max) {
      throw new ConfigError(name, `must be from ${min / 1000} s to ${max / 1000} s, got "${text}"`);
    }
    return value;
  };

  const url = (name: string): string | undefined => {
    const text = read(name);
    if (text === undefined) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      throw new ConfigError(name, `must be an http(s) URL, got "${text}"`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new ConfigError(name, `must be an http(s) URL, got "${text}"`);
    }
    return text.replace(/\/+$/, '');
  };

  const host = read('HOST') ?? '127.0.0.1';
  const port = int('PORT', 1080, 0, 65535);
  const publicUrl = url('PUBLIC_URL');
  const dataDir = path.resolve(read('DATA_DIR') ?? './data');
  const tempDir = read('TMPDIR') ?? path.join(dataDir, 'tmp');

  const databaseUrl = read('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'must be a postgres:// or postgresql:// URL');
  }

  const s3 = readS3(read, url, bool);
  const maxUploadSize = size('MAX_UPLOAD_SIZE', S3_LIMITS.maxObjectSize, 1, S3_LIMITS.maxObjectSize);
  const partSize = size('S3_PART_SIZE', 8 * MiB, S3_LIMITS.minPartSize, S3_LIMITS.maxPartSize);
  const partConcurrency = int('S3_PART_CONCURRENCY', 4, 1, 256);
  const tempDiskLimit = size('TEMP_DISK_LIMIT', 2 * GiB, 16 * MiB, 16 * TiB);
  // One piece (a part, or a segment of a larger one: src/tus/s3/layout.ts) must fit.
  if (tempDiskLimit < Math.max(partSize, 16 * MiB)) {
    throw new ConfigError('TEMP_DISK_LIMIT', `must hold at least one part of S3_PART_SIZE (${partSize} bytes)`);
  }
  const maxParts = int('S3_MAX_PARTS', S3_LIMITS.maxParts, 1, S3_LIMITS.maxParts);
  // The planner must be able to fit the largest upload in maxParts parts of at most 5 GiB.
  if (Math.ceil(maxUploadSize / maxParts) > S3_LIMITS.maxPartSize) {
    throw new ConfigError(
      'S3_MAX_PARTS',
      `is too low for MAX_UPLOAD_SIZE: ${maxParts} parts of at most 5 GiB hold less than ${maxUploadSize} bytes`,
    );
  }
  const s3RequestTimeoutMs = duration('S3_REQUEST_TIMEOUT', 60_000, 1_000, 3_600_000);
  const databaseTimeoutMs = duration('DATABASE_TIMEOUT', 10_000, 1_000, 600_000);
  const lockTimeoutMs = duration('LOCK_TIMEOUT', 30_000, 1_000, 600_000);
  const minUploadRate = size('UPLOAD_MIN_RATE', 16 * KiB, 0, GiB);
  const sha256 = read('UPLOAD_SHA256') === undefined ? true : bool('UPLOAD_SHA256');
  const stallTimeoutMs = duration('UPLOAD_STALL_TIMEOUT', 30_000, 1_000, 3_600_000);
  const userMaxOpenUploads = int('USER_MAX_OPEN_UPLOADS', 1000, 0, 1_000_000);
  const userMaxUploads = int('USER_MAX_UPLOADS', 10_000, 0, 100_000_000);
  const metadataMaxSize = size('METADATA_MAX_SIZE', 8 * KiB, 64, MiB);
  const metadataMaxValueSize = size('METADATA_MAX_VALUE_SIZE', 4 * KiB, 1, MiB);
  if (metadataMaxValueSize > metadataMaxSize) {
    throw new ConfigError(
      'METADATA_MAX_VALUE_SIZE',
      `cannot be larger than METADATA_MAX_SIZE (${metadataMaxSize} bytes), got ${metadataMaxValueSize} bytes`,
    );
  }
  const uploadExpiryMs = duration('UPLOAD_EXPIRY', 24 * 3_600_000, 60_000, 365 * 86_400_000);
  const uploadRetentionMs = duration('UPLOAD_RETENTION', 30 * 86_400_000, 3_600_000, 3650 * 86_400_000);
  const presignExpiresMs = duration('PRESIGN_EXPIRES', 15 * 60_000, 60_000, 60 * 60_000);
  // 0 turns the in-server janitor off; otherwise at least a minute (each run lists the bucket).
  const janitorText = read('JANITOR_INTERVAL');
  const janitorIntervalMs =
    janitorText !== undefined && parseDuration(janitorText) === 0
      ? 0
      : duration('JANITOR_INTERVAL', 10 * 60_000, 60_000, 7 * 86_400_000);
  const webhooks = readWebhooks(read, bool, duration);
  const concat = {
    concurrency: int('CONCAT_CONCURRENCY', 2, 1, 64),
    maxAttempts: int('CONCAT_MAX_ATTEMPTS', 10, 1, 1000),
    maxPartials: int('CONCAT_MAX_PARTIALS', 1000, 1, S3_LIMITS.maxParts),
  };

  const corsText = read('CORS_ORIGINS') ?? '*';
  let corsOrigins: Config['corsOrigins'] = '*';
  if (corsText !== '*') {
    corsOrigins = corsText
      .split(',')
      .map((origin) => origin.trim())
      .filter(Boolean);
    for (const origin of corsOrigins) {
      if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
        throw new ConfigError(
          'CORS_ORIGINS',
          `must be * or a comma-separated list of origins like https://app.example.com, got "${origin}"`,
        );
      }
    }
  }

  const logLevel = (read('LOG_LEVEL') ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }

  const metricsToken = read('METRICS_TOKEN');
  if (metricsToken !== undefined && !/^[\x21-\x7e]{16,}$/.test(metricsToken)) {
    throw new ConfigError('METRICS_TOKEN', 'must be at least 16 printable ASCII characters without spaces');
  }

  const auth = readAuth(read, bool, { host, dataDir, embedded: databaseUrl === undefined && s3 === undefined });
  const tokens: TokenChecks = {
    clockToleranceSeconds: duration('AUTH_CLOCK_TOLERANCE', 30_000, 0, 600_000) / 1000,
    issuer: read('AUTH_JWT_ISSUER'),
    audience: read('AUTH_JWT_AUDIENCE'),
  };

  return {
    host,
    port,
    publicUrl,
    dataDir,
    tempDir,
    databaseUrl,
    s3,
    partSize,
    partConcurrency,
    tempDiskLimit,
    maxParts,
    s3RequestTimeoutMs,
    databaseTimeoutMs,
    lockTimeoutMs,
    minUploadRate,
    stallTimeoutMs,
    sha256,
    maxUploadSize,
    userMaxOpenUploads,
    userMaxUploads,
    metadata: { maxSize: metadataMaxSize, maxValueSize: metadataMaxValueSize },
    uploadExpiryMs,
    uploadRetentionMs,
    presignExpiresMs,
    janitorIntervalMs,
    concat,
    webhooks,
    auth,
    tokens,
    corsOrigins,
    logLevel,
    metricsToken,
  };
}

function readAuth(
  read: (name: string) => string | undefined,
  bool: (name: string) => boolean,
  where: { host: string; dataDir: string; embedded: boolean },
): AuthConfig {
  const disabled = bool('AUTH_DISABLED');
  const secret = read('AUTH_JWT_SECRET');
  if (disabled) return { mode: 'disabled' };
  if (secret !== undefined) {
    if (secret.length < 32) {
      throw new ConfigError('AUTH_JWT_SECRET', 'must be at least 32 characters (HS256 needs a 256-bit secret)');
    }
    return { mode: 'jwt', secret };
  }
  const loopback = ['127.0.0.1', 'localhost', '::1'].includes(where.host);
  if (where.embedded && loopback) {
    return { mode: 'dev-secret', secretFile: path.join(where.dataDir, 'dev-jwt-secret') };
  }
  throw new ConfigError(
    'AUTH_JWT_SECRET',
    'is required when the server uses Postgres, S3 or a non-loopback HOST (set it, or AUTH_DISABLED=true for development only)',
  );
}
