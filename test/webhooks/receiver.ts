/**
 * A webhook receiver for tests: a local HTTP server that records every request (raw body, headers) and answers as
 * the test says, including not at all. It can go down and come back on the same port.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll } from 'vitest';

export interface Received {
  headers: http.IncomingHttpHeaders;
  /** The body exactly as it arrived (what the signature covers). */
  raw: string;
  json: { event: string; id?: number; upload: Record<string, any>; occurredAt?: string };
}

export type Answer = { status: number; body?: string; contentType?: string } | 'hang';

export interface Receiver {
  readonly url: string;
  readonly received: Received[];
  /** The first request (received already, or the next to come) that `matches`: an event to wait for, not a poll. */
  next(matches: (request: Received) => boolean): Promise<Received>;
  /** How the next requests are answered (default: 204). */
  answer: (request: Received) => Answer;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const waiting = new Set<{ matches: (request: Received) => boolean; resolve: (request: Received) => void }>();
  const hanging = new Set<http.ServerResponse>();
  let port = 0;
  let server: http.Server | undefined;

  const receiver: Receiver = {
    get url() {
      return `http://127.0.0.1:${port}/hooks/freight`;
    },
    received,
    next(matches) {
      const already = received.find(matches);
      if (already) return Promise.resolve(already);
      return new Promise((resolve) => waiting.add({ matches, resolve }));
    },
    answer: () => ({ status: 204 }),
    async down() {
      for (const response of hanging) response.destroy();
      hanging.clear();
      const closing = server;
      server = undefined;
      if (!closing) return;
      closing.closeAllConnections();
      await new Promise<void>((resolve) => closing.close(() => resolve()));
    },
    async up() {
      if (server) return;
      server = http.createServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on('data', (chunk: Buffer) => chunks.push(chunk));
        request.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const entry: Received = { headers: request.headers, raw, json: JSON.parse(raw) };
          received.push(entry);
          for (const waiter of waiting) {
            if (!waiter.matches(entry)) continue;
            waiting.delete(waiter);
            waiter.resolve(entry);
          }
          const answer = receiver.answer(entry);
          if (answer === 'hang') {
            hanging.add(response);
            return;
          }
          response.writeHead(answer.status, answer.contentType ? { 'Content-Type': answer.contentType } : {});
          response.end(answer.body ?? '');
        });
      });
      await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    },
    close: () => receiver.down(),
  };
  await receiver.up();
  return receiver;
}

/**
 * A receiver for the tests of one file: started before them, closed after them, and back to answering 204 after
 * each test. What it returns stands for that receiver once the file's tests run.
 */
export function receiverForFile(): Receiver {
  let current: Receiver | undefined;
  const started = (): Receiver => {
    if (!current) throw new Error('the receiver is started before the tests (beforeAll)');
    return current;
  };
  beforeAll(async () => {
    current = await startReceiver();
  });
  afterEach(() => {
    if (current) current.answer = () => ({ status: 204 });
  });
  afterAll(async () => {
    await current?.close();
  });
  return {
    get url() {
      return started().url;
    },
    get received() {
      return started().received;
    },
    next: (matches) => started().next(matches),
    get answer() {
      return started().answer;
    },
    set answer(answer) {
      started().answer = answer;
    },
    down: () => started().down(),
    up: () => started().up(),
    close: () => started().close(),
  };
}

/**
 * How `receiver` answers Freight's pre-finish check (WEBHOOK_PRE_FINISH) of uploads named `filename`, or of every
 * upload when `filename` is undefined; every other request is answered 204.
 */
export function answerPreFinish(receiver: Receiver, filename: string | undefined, answer: Receiver['answer']): void {
  receiver.answer = (request) =>
    request.json.event === 'upload.pre-finish' && (filename === undefined || request.json.upload.filename === filename)
      ? answer(request)
      : { status: 204 };
}
