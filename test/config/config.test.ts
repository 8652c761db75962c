import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { MiB, TiB, formatBytes, parseDuration, parseSize } from '../../src/config/units.js';

const SECRET = 'x'.repeat(32);

describe('configuration from the environment', () => {
  test('defaults: 127.0.0.1:1080, embedded database and files under ./data, 5 TiB, 24 h expiry', () => {
    const config = loadConfig({ AUTH_JWT_SECRET: SECRET });
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 1080,
      dataDir: path.resolve('data'),
      tempDir: path.resolve('data', 'tmp'),
      databaseUrl: undefined,
      s3: undefined,
      partSize: 8 * MiB,
      partConcurrency: 4,
      tempDiskLimit: 2 * 1024 * MiB,
      maxParts: 10_000,
      s3RequestTimeoutMs: 60_000,
      databaseTimeoutMs: 10_000,
      lockTimeoutMs: 30_000,
      minUploadRate: 16 * 1024,
      stallTimeoutMs: 30_000,
      maxUploadSize: 5 * TiB,
      userMaxOpenUploads: 1000,
      userMaxUploads: 10_000,
      metadata: { maxSize: 8 * 1024, maxValueSize: 4 * 1024 },
      uploadExpiryMs: 24 * 3600 * 1000,
      uploadRetentionMs: 30 * 86_400_000,
      presignExpiresMs: 15 * 60 * 1000,
      janitorIntervalMs: 10 * 60 * 1000,
      webhooks: undefined,
      corsOrigins: '*',
      auth: { mode: 'jwt', secret: SECRET },
      tokens: { clockToleranceSeconds: 30, issuer: undefined, audience: undefined },
    });
  });

  test('every variable is read', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '0.0.0.0',
      PUBLIC_URL: 'https://uploads.example.com/',
      DATA_DIR: '/srv/freight',
      TMPDIR: '/scratch',
      DATABASE_URL: 'postgres://u@db/freight',
      S3_BUCKET: 'my-bucket',
      S3_ENDPOINT: 'http://127.0.0.1:7480',
      S3_REGION: 'eu-west-1',
      S3_ACCESS_KEY_ID: 'key',
      S3_SECRET_ACCESS_KEY: 'secret',
      S3_FORCE_PATH_STYLE: 'true',
      S3_PART_SIZE: '16MiB',
      S3_PART_CONCURRENCY: '12',
      S3_MAX_PARTS: '5000',
      S3_ACCELERATE: 'true',
      S3_REQUEST_TIMEOUT: '2m',
      DATABASE_TIMEOUT: '20s',
      LOCK_TIMEOUT: '45s',
      UPLOAD_MIN_RATE: '1KiB',
      UPLOAD_STALL_TIMEOUT: '1m',
      MAX_UPLOAD_SIZE: '1TiB',
      USER_MAX_OPEN_UPLOADS: '25',
      USER_MAX_UPLOADS: '500',
      METADATA_MAX_SIZE: '32KiB',
      METADATA_MAX_VALUE_SIZE: '16KiB',
      UPLOAD_RETENTION: '90d',
      AUTH_JWT_SECRET: SECRET,
      AUTH_CLOCK_TOLERANCE: '2m',
      AUTH_JWT_ISSUER: 'https://id.example.com',
      AUTH_JWT_AUDIENCE: 'freight',
      CORS_ORIGINS: 'https://a.example.com, https://b.example.com',
      UPLOAD_EXPIRY: '7d',
      PRESIGN_EXPIRES: '5m',
      JANITOR_INTERVAL: '1h',
      CONCAT_CONCURRENCY: '3',
      CONCAT_MAX_ATTEMPTS: '4',
      CONCAT_MAX_PARTIALS: '50',
      WEBHOOK_URL: 'https://hooks.example.com/freight/',
      WEBHOOK_SECRET: 'w'.repeat(32),
      WEBHOOK_TIMEOUT: '3s',
      WEBHOOK_PRE_CREATE: 'true',
      LOG_LEVEL: 'warn',
    });
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      publicUrl: 'https://uploads.example.com',
      dataDir: '/srv/freight',
      tempDir: '/scratch',
      databaseUrl: 'postgres://u@db/freight',
      s3: {
        bucket: 'my-bucket',
        endpoint: 'http://127.0.0.1:7480',
        region: 'eu-west-1',
        credentials: { accessKeyId: 'key', secretAccessKey: 'secret' },
        forcePathStyle: true,
        accelerate: true,
      },
      partSize: 16 * MiB,
      partConcurrency: 12,
      maxParts: 5000,
      s3RequestTimeoutMs: 120_000,
      databaseTimeoutMs: 20_000,
      lockTimeoutMs: 45_000,
      minUploadRate: 1024,
      stallTimeoutMs: 60_000,
      maxUploadSize: TiB,
      userMaxOpenUploads: 25,
      userMaxUploads: 500,
      metadata: { maxSize: 32 * 1024, maxValueSize: 16 * 1024 },
      uploadRetentionMs: 90 * 86_400_000,
      tokens: { clockToleranceSeconds: 120, issuer: 'https://id.example.com', audience: 'freight' },
      corsOrigins: ['https://a.example.com', 'https://b.example.com'],
      uploadExpiryMs: 7 * 86_400_000,
      presignExpiresMs: 5 * 60_000,
      janitorIntervalMs: 3_600_000,
      concat: { concurrency: 3, maxAttempts: 4, maxPartials: 50 },
      webhooks: {
        url: 'https://hooks.example.com/freight/',
        secret: 'w'.repeat(32),
        timeoutMs: 3_000,
        preCreate: true,
      },
      logLevel: 'warn',
    });
  });

  test.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PUBLIC_URL: 'ftp://x' }, 'PUBLIC_URL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ S3_BUCKET: 'Bad_Bucket' }, 'S3_BUCKET'],
    [{ S3_BUCKET: 'b-1', S3_ACCESS_KEY_ID: 'k' }, 'S3_SECRET_ACCESS_KEY'],
    [{ S3_PART_SIZE: '1MiB' }, 'S3_PART_SIZE'],
    [{ S3_PART_SIZE: 'big' }, 'S3_PART_SIZE'],
    [{ S3_PART_CONCURRENCY: '0' }, 'S3_PART_CONCURRENCY'],
    [{ CONCAT_CONCURRENCY: '0' }, 'CONCAT_CONCURRENCY'],
    [{ CONCAT_MAX_ATTEMPTS: 'often' }, 'CONCAT_MAX_ATTEMPTS'],
    [{ CONCAT_MAX_PARTIALS: '10001' }, 'CONCAT_MAX_PARTIALS'],
    [{ TEMP_DISK_LIMIT: 'lots' }, 'TEMP_DISK_LIMIT'],
    // Not even one piece (a part of S3_PART_SIZE) would fit.
    [{ TEMP_DISK_LIMIT: '32MiB', S3_PART_SIZE: '64MiB' }, 'TEMP_DISK_LIMIT'],
    [{ S3_MAX_PARTS: '0' }, 'S3_MAX_PARTS'],
    [{ S3_MAX_PARTS: '10001' }, 'S3_MAX_PARTS'],
    [{ S3_MAX_PARTS: '100' }, 'S3_MAX_PARTS'],
    [{ S3_BUCKET: 'with.dots', S3_ACCELERATE: 'true' }, 'S3_ACCELERATE'],
    [{ S3_REQUEST_TIMEOUT: '0' }, 'S3_REQUEST_TIMEOUT'],
    [{ DATABASE_TIMEOUT: 'never' }, 'DATABASE_TIMEOUT'],
    [{ LOCK_TIMEOUT: '1h' }, 'LOCK_TIMEOUT'],
    [{ UPLOAD_MIN_RATE: 'fast' }, 'UPLOAD_MIN_RATE'],
    [{ UPLOAD_SHA256: 'sometimes' }, 'UPLOAD_SHA256'],
    [{ UPLOAD_STALL_TIMEOUT: '500ms' }, 'UPLOAD_STALL_TIMEOUT'],
    [{ MAX_UPLOAD_SIZE: '6TiB' }, 'MAX_UPLOAD_SIZE'],
    [{ USER_MAX_OPEN_UPLOADS: '-1' }, 'USER_MAX_OPEN_UPLOADS'],
    [{ USER_MAX_OPEN_UPLOADS: 'lots' }, 'USER_MAX_OPEN_UPLOADS'],
    [{ USER_MAX_OPEN_UPLOADS: '2.5' }, 'USER_MAX_OPEN_UPLOADS'],
    [{ UPLOAD_EXPIRY: 'forever' }, 'UPLOAD_EXPIRY'],
    [{ USER_MAX_UPLOADS: '-1' }, 'USER_MAX_UPLOADS'],
    [{ METADATA_MAX_SIZE: '2MiB' }, 'METADATA_MAX_SIZE'],
    [{ METADATA_MAX_VALUE_SIZE: '16KiB' }, 'METADATA_MAX_VALUE_SIZE'],
    [{ UPLOAD_RETENTION: '10m' }, 'UPLOAD_RETENTION'],
    [{ PRESIGN_EXPIRES: '2h' }, 'PRESIGN_EXPIRES'],
    [{ PRESIGN_EXPIRES: '30s' }, 'PRESIGN_EXPIRES'],
    [{ CORS_ORIGINS: 'example.com' }, 'CORS_ORIGINS'],
    [{ AUTH_DISABLED: 'maybe' }, 'AUTH_DISABLED'],
    [{ AUTH_CLOCK_TOLERANCE: 'a little' }, 'AUTH_CLOCK_TOLERANCE'],
    [{ AUTH_CLOCK_TOLERANCE: '1h' }, 'AUTH_CLOCK_TOLERANCE'],
    [{ S3_FORCE_PATH_STYLE: 'yes please' }, 'S3_FORCE_PATH_STYLE'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ JANITOR_INTERVAL: 'often' }, 'JANITOR_INTERVAL'],
    [{ JANITOR_INTERVAL: '10s' }, 'JANITOR_INTERVAL'],
    [{ JANITOR_INTERVAL: '30d' }, 'JANITOR_INTERVAL'],
    [{ WEBHOOK_URL: 'ftp://hooks.example.com' }, 'WEBHOOK_URL'],
    [{ WEBHOOK_URL: 'not a url', WEBHOOK_SECRET: 'w'.repeat(32) }, 'WEBHOOK_URL'],
    [{ WEBHOOK_URL: 'https://hooks.example.com' }, 'WEBHOOK_SECRET'],
    [{ WEBHOOK_URL: 'https://hooks.example.com', WEBHOOK_SECRET: 'too short' }, 'WEBHOOK_SECRET'],
    [
      { WEBHOOK_URL: 'https://hooks.example.com', WEBHOOK_SECRET: 'w'.repeat(32), WEBHOOK_TIMEOUT: '500ms' },
      'WEBHOOK_TIMEOUT',
    ],
    [{ WEBHOOK_TIMEOUT: 'soon' }, 'WEBHOOK_TIMEOUT'],
    [{ WEBHOOK_PRE_CREATE: 'true' }, 'WEBHOOK_PRE_CREATE'],
    [
      { WEBHOOK_URL: 'https://hooks.example.com', WEBHOOK_SECRET: 'w'.repeat(32), WEBHOOK_PRE_CREATE: 'maybe' },
      'WEBHOOK_PRE_CREATE',
    ],
  ])('%o is refused, naming %s', (env, variable) => {
    let error: unknown;
    try {
      loadConfig({ AUTH_JWT_SECRET: SECRET, ...env });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    expect((error as ConfigError).message.startsWith(variable)).toBe(true);
    expect((error as ConfigError).message).not.toContain('\n');
  });

  test('S3_PUBLIC_ENDPOINT: the endpoint of URLs signed for clients; a URL, and not with S3_ACCELERATE', () => {
    const env = { AUTH_JWT_SECRET: SECRET, S3_BUCKET: 'bucket', S3_ENDPOINT: 'http://minio:9000' };
    expect(loadConfig(env).s3?.publicEndpoint).toBeUndefined();
    expect(loadConfig({ ...env, S3_PUBLIC_ENDPOINT: 'http://localhost:9000/' }).s3).toMatchObject({
      endpoint: 'http://minio:9000',
      publicEndpoint: 'http://localhost:9000',
    });
    expect(() => loadConfig({ ...env, S3_PUBLIC_ENDPOINT: 'localhost:9000' })).toThrow(
      /^S3_PUBLIC_ENDPOINT must be an http\(s\) URL/,
    );
    expect(() =>
      loadConfig({
        ...env,
        S3_ENDPOINT: undefined,
        S3_ACCELERATE: 'true',
        S3_PUBLIC_ENDPOINT: 'https://cdn.example.com',
      }),
    ).toThrow(/^S3_PUBLIC_ENDPOINT cannot be combined with S3_ACCELERATE/);
  });

  test('S3_KEY_PREFIX: before every new key; relative, no traversal, not without S3_BUCKET', () => {
    const env = { AUTH_JWT_SECRET: SECRET, S3_BUCKET: 'bucket' };
    expect(loadConfig(env).s3?.keyPrefix).toBe('');
    expect(loadConfig({ ...env, S3_KEY_PREFIX: 'uploads/' }).s3?.keyPrefix).toBe('uploads/');
    expect(loadConfig({ ...env, S3_KEY_PREFIX: 'tenant-a/uploads-' }).s3?.keyPrefix).toBe('tenant-a/uploads-');
    for (const bad of [
      '/uploads/',
      '../uploads/',
      'a/../b/',
      'a//b/',
      'a\\b/',
      'x.staging/',
      'a\u0001/',
      'p'.repeat(257),
    ]) {
      expect(() => loadConfig({ ...env, S3_KEY_PREFIX: bad }), bad).toThrow(/^S3_KEY_PREFIX must be at most 256/);
    }
    expect(() => loadConfig({ AUTH_JWT_SECRET: SECRET, S3_KEY_PREFIX: 'uploads/' })).toThrow(
      /^S3_KEY_PREFIX needs S3_BUCKET/,
    );
  });

  test('METRICS_TOKEN protects GET /metrics when set; a short one is refused', () => {
    expect(loadConfig({ AUTH_JWT_SECRET: SECRET }).metricsToken).toBeUndefined();
    expect(loadConfig({ AUTH_JWT_SECRET: SECRET, METRICS_TOKEN: 'scrape-0123456789abcdef' }).metricsToken).toBe(
      'scrape-0123456789abcdef',
    );
    expect(() => loadConfig({ AUTH_JWT_SECRET: SECRET, METRICS_TOKEN: 'short' })).toThrow(
      /^METRICS_TOKEN must be at least 16/,
    );
  });

  test('USER_MAX_OPEN_UPLOADS=0 turns the limit off', () => {
    expect(loadConfig({ AUTH_JWT_SECRET: SECRET, USER_MAX_OPEN_UPLOADS: '0' }).userMaxOpenUploads).toBe(0);
  });

  test('JANITOR_INTERVAL=0 (in any unit) turns the janitor in the server off', () => {
    for (const value of ['0', '0s', '0m']) {
      expect(loadConfig({ AUTH_JWT_SECRET: SECRET, JANITOR_INTERVAL: value }).janitorIntervalMs).toBe(0);
    }
  });

  test('webhooks: off without WEBHOOK_URL; with it, a 10 s timeout, no pre-create or pre-finish check, progress every 30 s and every event by default', () => {
    expect(loadConfig({ AUTH_JWT_SECRET: SECRET, WEBHOOK_SECRET: 'w'.repeat(32) }).webhooks).toBeUndefined();
    expect(
      loadConfig({ AUTH_JWT_SECRET: SECRET, WEBHOOK_URL: 'http://127.0.0.1:9000/hook', WEBHOOK_SECRET: 'w'.repeat(32) })
        .webhooks,
    ).toEqual({
      url: 'http://127.0.0.1:9000/hook',
      secret: 'w'.repeat(32),
      timeoutMs: 10_000,
      preCreate: false,
      preFinish: false,
      progressIntervalMs: 30_000,
      events: [
        'upload.created',
        'upload.completed',
        'upload.failed',
        'upload.aborted',
        'upload.expired',
        'upload.progress',
      ],
    });
  });

  describe('webhook settings', () => {
    const hooked = {
      AUTH_JWT_SECRET: SECRET,
      WEBHOOK_URL: 'http://127.0.0.1:9000/hook',
      WEBHOOK_SECRET: 'w'.repeat(32),
    };

    test('WEBHOOK_PRE_FINISH=true turns the gate on, and needs WEBHOOK_URL; the other settings are checked without it', () => {
      expect(loadConfig({ ...hooked, WEBHOOK_PRE_FINISH: 'true' }).webhooks?.preFinish).toBe(true);
      expect(() => loadConfig({ AUTH_JWT_SECRET: SECRET, WEBHOOK_PRE_FINISH: 'true' })).toThrow(
        /^WEBHOOK_PRE_FINISH needs WEBHOOK_URL/,
      );
      expect(loadConfig({ AUTH_JWT_SECRET: SECRET, WEBHOOK_PRE_FINISH: 'false' }).webhooks).toBeUndefined();
      expect(loadConfig({ AUTH_JWT_SECRET: SECRET, WEBHOOK_EVENTS: 'upload.completed' }).webhooks).toBeUndefined();
      expect(() => loadConfig({ AUTH_JWT_SECRET: SECRET, WEBHOOK_EVENTS: 'upload.done' })).toThrow(/^WEBHOOK_EVENTS/);
      expect(() => loadConfig({ AUTH_JWT_SECRET: SECRET, WEBHOOK_PROGRESS_INTERVAL: 'x' })).toThrow(
        /^WEBHOOK_PROGRESS_INTERVAL/,
      );
      expect(() => loadConfig({ ...hooked, WEBHOOK_PRE_FINISH: 'maybe' })).toThrow(
        /^WEBHOOK_PRE_FINISH must be true or false, got "maybe"/,
      );
    });

    test('WEBHOOK_PROGRESS_INTERVAL is a duration of at least a second, or 0 (in any unit) for no progress events', () => {
      expect(loadConfig({ ...hooked, WEBHOOK_PROGRESS_INTERVAL: '5m' }).webhooks?.progressIntervalMs).toBe(300_000);
      for (const value of ['0', '0s', '0m']) {
        expect(loadConfig({ ...hooked, WEBHOOK_PROGRESS_INTERVAL: value }).webhooks?.progressIntervalMs).toBe(0);
      }
      expect(() => loadConfig({ ...hooked, WEBHOOK_PROGRESS_INTERVAL: '500ms' })).toThrow(
        /^WEBHOOK_PROGRESS_INTERVAL must be/,
      );
      expect(() => loadConfig({ ...hooked, WEBHOOK_PROGRESS_INTERVAL: 'often' })).toThrow(
        /^WEBHOOK_PROGRESS_INTERVAL must be a duration/,
      );
    });

    test('WEBHOOK_EVENTS is a comma list of event names, checked one by one', () => {
      expect(
        loadConfig({ ...hooked, WEBHOOK_EVENTS: ' upload.failed,upload.completed , upload.completed' }).webhooks
          ?.events,
      ).toEqual(['upload.completed', 'upload.failed']);
      expect(() => loadConfig({ ...hooked, WEBHOOK_EVENTS: 'upload.completed,upload.finished' })).toThrow(
        /^WEBHOOK_EVENTS must be a comma-separated list of upload\.created, .*; "upload\.finished" is none of them$/,
      );
      expect(() => loadConfig({ ...hooked, WEBHOOK_EVENTS: 'upload.pre-create' })).toThrow(
        /"upload\.pre-create" is none of them/,
      );
      expect(() => loadConfig({ ...hooked, WEBHOOK_EVENTS: ' , ' })).toThrow(/^WEBHOOK_EVENTS must name at least one/);
    });
  });

  describe('authentication settings', () => {
    test('AUTH_CLOCK_TOLERANCE=0 makes the token times exact', () => {
      expect(loadConfig({ AUTH_JWT_SECRET: SECRET, AUTH_CLOCK_TOLERANCE: '0' }).tokens.clockToleranceSeconds).toBe(0);
    });

    test('a short secret is refused', () => {
      expect(() => loadConfig({ AUTH_JWT_SECRET: 'short' })).toThrow(/AUTH_JWT_SECRET must be at least 32/);
    });

    test('AUTH_DISABLED=true needs no secret', () => {
      expect(loadConfig({ AUTH_DISABLED: 'true', DATABASE_URL: 'postgres://x/y' }).auth).toEqual({ mode: 'disabled' });
    });

    test('neither set with Postgres, S3 or a public HOST: the server refuses to start', () => {
      for (const env of [{ DATABASE_URL: 'postgres://x/y' }, { S3_BUCKET: 'bucket' }, { HOST: '0.0.0.0' }]) {
        expect(() => loadConfig(env)).toThrow(/^AUTH_JWT_SECRET is required/);
      }
    });

    test('neither set on the embedded defaults on loopback: a development secret under DATA_DIR', () => {
      expect(loadConfig({ DATA_DIR: '/tmp/f' }).auth).toEqual({
        mode: 'dev-secret',
        secretFile: '/tmp/f/dev-jwt-secret',
      });
    });
  });
});

describe('sizes and durations', () => {
  test.each([
    ['8MiB', 8 * MiB],
    ['5 TiB', 5 * TiB],
    ['10MB', 10_000_000],
    ['123', 123],
    ['1.5KiB', 1536],
  ])('size %s', (text, bytes) => expect(parseSize(text)).toBe(bytes));

  test.each(['', 'MiB', '5 parsecs', '-1'])('not a size: %j', (text) => expect(parseSize(text)).toBeUndefined());

  test.each([
    ['15m', 900_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['90', 90_000],
    ['250ms', 250],
  ])('duration %s', (text, ms) => expect(parseDuration(text)).toBe(ms));

  test('bytes print in binary units', () => {
    expect(formatBytes(8 * MiB)).toBe('8 MiB');
    expect(formatBytes(5 * TiB)).toBe('5 TiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(12)).toBe('12 B');
  });
});
