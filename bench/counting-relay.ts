/**
 * A TCP relay in front of the S3 endpoint that counts the bytes crossing it each way, so that what a server sends
 * to S3 is measured outside the server (not taken from its own accounting). Give the server the relay's URL as its
 * S3_ENDPOINT: every request it makes to S3, and every answer, passes through here. Bytes are counted as they
 * arrive on the wire, HTTP headers included.
 *
 * The relay runs in a worker thread of the benchmark process, so relaying never waits on the client's event loop;
 * the counters are shared memory, read and reset from the main thread at any time.
 */
import net from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface RelayCounts {
  /** Bytes from the server to S3: requests and their bodies. */
  toS3: number;
  /** Bytes from S3 to the server: answers and their bodies. */
  fromS3: number;
  /** Connections the server opened. */
  connections: number;
}

export interface CountingRelay {
  /** The relay's endpoint (`http://127.0.0.1:<port>`), to use instead of the S3 endpoint. */
  readonly url: string;
  /** What crossed the relay since it started or was last reset. */
  counts(): RelayCounts;
  reset(): void;
  close(): Promise<void>;
}

const TO_S3 = 0;
const FROM_S3 = 1;
const CONNECTIONS = 2;

interface RelayWorkerData {
  role: 'counting-relay';
  host: string;
  port: number;
  counters: SharedArrayBuffer;
}

/** Starts a relay on a free port of 127.0.0.1 that forwards to `target` (an http:// URL: its host and port). */
export async function startCountingRelay(target: string): Promise<CountingRelay> {
  const parsed = new URL(target);
  const port = Number(parsed.port) || (parsed.protocol === 'https:' ? 443 : 80);
  const counters = new SharedArrayBuffer(3 * BigInt64Array.BYTES_PER_ELEMENT);
  const data: RelayWorkerData = { role: 'counting-relay', host: parsed.hostname, port, counters };
  const worker = new Worker(new URL(import.meta.url), { workerData: data });
  const listening = await new Promise<number>((resolve, reject) => {
    worker.once('message', (message: { port: number }) => resolve(message.port));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`counting relay exited with ${code} before listening`)));
  });
  const view = new BigInt64Array(counters);
  return {
    url: `${parsed.protocol}//127.0.0.1:${listening}`,
    counts: () => ({
      toS3: Number(Atomics.load(view, TO_S3)),
      fromS3: Number(Atomics.load(view, FROM_S3)),
      connections: Number(Atomics.load(view, CONNECTIONS)),
    }),
    reset: () => {
      for (const index of [TO_S3, FROM_S3, CONNECTIONS]) Atomics.store(view, index, 0n);
    },
    close: async () => {
      await worker.terminate();
    },
  };
}

/** The worker's side: accept, connect to the target, pipe both ways, count. */
function relay({ host, port, counters }: RelayWorkerData): void {
  const view = new BigInt64Array(counters);
  const server = net.createServer((client) => {
    Atomics.add(view, CONNECTIONS, 1n);
    const upstream = net.connect(port, host);
    for (const socket of [client, upstream]) {
      socket.setNoDelay(true);
      socket.on('error', () => {});
      socket.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => Atomics.add(view, TO_S3, BigInt(chunk.length)));
    upstream.on('data', (chunk: Buffer) => Atomics.add(view, FROM_S3, BigInt(chunk.length)));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1', () => parentPort!.postMessage({ port: (server.address() as net.AddressInfo).port }));
}

if (!isMainThread && (workerData as RelayWorkerData | undefined)?.role === 'counting-relay')
  relay(workerData as RelayWorkerData);
