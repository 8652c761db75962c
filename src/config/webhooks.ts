/** The webhook settings (WEBHOOK_*), read and validated with the rest of the configuration (index.ts). */
import { UPLOAD_EVENTS, type UploadEvent } from '../lifecycle.js';
import { ConfigError } from './error.js';
import { parseDuration } from './units.js';

/** Webhooks (WEBHOOK_URL and the rest); undefined when WEBHOOK_URL is unset. */
export interface WebhookConfig {
  /** Receives a signed JSON POST for every upload event (and the pre-create and pre-finish checks). */
  url: string;
  /** HMAC-SHA256 key of the Freight-Signature header (at least 32 characters). */
  secret: string;
  /** The longest one POST to the receiver may take (connect, send, answer) before it counts as failed. */
  timeoutMs: number;
  /** Ask the receiver before every creation; its 4xx refuses the upload. */
  preCreate: boolean;
  /** Ask the receiver once an upload's bytes are stored and verified, before it counts as completed. */
  preFinish: boolean;
  /** WEBHOOK_PROGRESS_INTERVAL: at most one upload.progress per upload this often; 0: none. */
  progressIntervalMs: number;
  /** WEBHOOK_EVENTS: the upload events written to the outbox (and so sent); the others are not recorded. */
  events: readonly UploadEvent[];
}

type Read = (name: string) => string | undefined;
type Duration = (name: string, fallback: number, min: number, max: number) => number;

/**
 * The checks that cannot be on without a receiver to decide. The other settings (WEBHOOK_TIMEOUT,
 * WEBHOOK_PROGRESS_INTERVAL, WEBHOOK_EVENTS) are checked, and mean nothing until WEBHOOK_URL is set.
 */
const CHECKS = ['WEBHOOK_PRE_CREATE', 'WEBHOOK_PRE_FINISH'] as const;

export function readWebhooks(
  read: Read,
  bool: (name: string) => boolean,
  duration: Duration,
): WebhookConfig | undefined {
  const url = read('WEBHOOK_URL');
  const secret = read('WEBHOOK_SECRET');
  const timeoutMs = duration('WEBHOOK_TIMEOUT', 10_000, 1_000, 300_000);
  const preCreate = bool('WEBHOOK_PRE_CREATE');
  const preFinish = bool('WEBHOOK_PRE_FINISH');
  // 0 turns progress events off; otherwise at least a second.
  const progressText = read('WEBHOOK_PROGRESS_INTERVAL');
  const progressIntervalMs =
    progressText !== undefined && parseDuration(progressText) === 0
      ? 0
      : duration('WEBHOOK_PROGRESS_INTERVAL', 30_000, 1_000, 86_400_000);
  const events = readEvents(read('WEBHOOK_EVENTS'));
  if (url === undefined) {
    const on = CHECKS.find((name) => bool(name));
    if (on) throw new ConfigError(on, 'needs WEBHOOK_URL (the receiver that decides)');
    return undefined;
  }
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {}
  // Kept exactly as given (a trailing slash may matter to the receiver).
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new ConfigError('WEBHOOK_URL', `must be an http(s) URL, got "${url}"`);
  }
  if (secret === undefined)
    throw new ConfigError('WEBHOOK_SECRET', 'is required when WEBHOOK_URL is set (it signs every webhook)');
  if (secret.length < 32)
    throw new ConfigError('WEBHOOK_SECRET', 'must be at least 32 characters (HMAC-SHA256 needs a 256-bit key)');
  return { url, secret, timeoutMs, preCreate, preFinish, progressIntervalMs, events };
}

/** WEBHOOK_EVENTS: a comma list of event names (default: all of them). */
function readEvents(text: string | undefined): readonly UploadEvent[] {
  if (text === undefined) return UPLOAD_EVENTS;
  const names = text
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of names) {
    if (!(UPLOAD_EVENTS as readonly string[]).includes(name)) {
      throw new ConfigError(
        'WEBHOOK_EVENTS',
        `must be a comma-separated list of ${UPLOAD_EVENTS.join(', ')}; "${name}" is none of them`,
      );
    }
  }
  if (names.length === 0)
    throw new ConfigError('WEBHOOK_EVENTS', `must name at least one of ${UPLOAD_EVENTS.join(', ')}`);
  return UPLOAD_EVENTS.filter((event) => names.includes(event));
}
