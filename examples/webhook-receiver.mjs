#!/usr/bin/env node
/**
 * A webhook receiver for Freight, ready to run (Node 20, no dependencies): docs/webhooks.md explains each part.
 *
 *   WEBHOOK_SECRET=<the same secret as Freight's> PORT=3000 node examples/webhook-receiver.mjs
 *   # then run Freight with WEBHOOK_URL=http://127.0.0.1:3000/hooks/freight (and WEBHOOK_PRE_CREATE / _PRE_FINISH)
 *
 * It checks every request's Freight-Signature on the raw body (401 if it does not match, or is more than 5 minutes
 * off this machine's clock), then:
 * - upload.pre-create: allows every upload, unless its file name ends in one of REFUSE_EXTENSIONS (403);
 * - upload.pre-finish: approves every upload (204), unless its name ends in one of REFUSE_EXTENSIONS (422, with a
 *   message Freight passes on to the client); this is where a virus scan or a format check would go;
 * - upload.* events: applies each once and in order per upload (an event is sent at least once, and events arrive
 *   in any order: the `id`s of one upload's events increase with its changes), and prints it.
 * Whatever is not understood is answered 400 (Freight retries events, so a broken receiver loses nothing).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';

const secret = process.env.WEBHOOK_SECRET;
if (!secret) {
  console.error('WEBHOOK_SECRET is required (the same value as Freight’s)');
  process.exit(1);
}
const port = Number(process.env.PORT ?? 3000);
const refused = (process.env.REFUSE_EXTENSIONS ?? '.exe,.bat,.scr')
  .split(',')
  .map((extension) => extension.trim().toLowerCase())
  .filter(Boolean);
const TOLERANCE_SECONDS = 300;

/** Freight-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>"> keyed with WEBHOOK_SECRET. */
export function isFromFreight(rawBody, header, now = Date.now()) {
  const fields = Object.fromEntries(
    (header ?? '').split(',').map((field) => {
      const at = field.indexOf('=');
      return [field.slice(0, at).trim(), field.slice(at + 1).trim()];
    }),
  );
  const t = Number(fields.t);
  if (!Number.isInteger(t) || Math.abs(now / 1000 - t) > TOLERANCE_SECONDS) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(fields.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const isRefused = (filename) => refused.some((extension) => (filename ?? '').toLowerCase().endsWith(extension));

/** The id of the last event applied, per upload: a duplicate or an older event is acknowledged and skipped. */
const lastApplied = new Map();

function decide(body) {
  const { event, upload } = body;
  switch (event) {
    case 'upload.pre-create':
      return isRefused(upload.filename)
        ? { status: 403, message: `${upload.filename}: files of this type are not accepted` }
        : { status: 204 };
    case 'upload.pre-finish':
      // The upload's bytes are stored and verified (upload.sha256 on tus uploads); its object is in the bucket
      // under upload.storageKey. Fetch and scan it here if you like: answer within WEBHOOK_TIMEOUT, or answer
      // 503 now and let Freight ask again later (the upload stays awaiting_approval meanwhile).
      if (isRefused(upload.filename)) {
        return { status: 422, message: `${upload.filename} was refused after upload: executable content` };
      }
      console.log(`approved ${upload.id} (${upload.filename}, ${upload.totalSize} bytes, sha256 ${upload.sha256})`);
      return { status: 204 };
    default: {
      if (typeof event !== 'string' || !event.startsWith('upload.') || typeof body.id !== 'number') {
        return { status: 400, message: 'not a Freight event' };
      }
      if ((lastApplied.get(upload.id) ?? 0) >= body.id) return { status: 204 };
      lastApplied.set(upload.id, body.id);
      const progress =
        event === 'upload.progress' ? ` ${upload.bytesReceived}/${upload.totalSize ?? '?'} bytes` : '';
      console.log(`${event} #${body.id} ${upload.id} ${upload.status}${progress}`);
      return { status: 204 };
    }
  }
}

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    let answer;
    if (request.method !== 'POST') answer = { status: 405, message: 'POST only' };
    else if (!isFromFreight(raw, request.headers['freight-signature'])) answer = { status: 401, message: 'bad signature' };
    else {
      try {
        answer = decide(JSON.parse(raw));
      } catch {
        answer = { status: 400, message: 'not JSON' };
      }
    }
    if (answer.message === undefined) response.writeHead(answer.status).end();
    else {
      response
        .writeHead(answer.status, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ message: answer.message }));
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/hooks/freight`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
