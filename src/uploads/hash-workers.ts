/**
 * SHA-256 off the event loop: a few worker threads, each holding the hash-wasm hashers of the uploads given to it.
 * Hashing costs about as much CPU as everything else a tus upload does in this process, so on the main thread it
 * bounded the throughput; here it runs beside the network and disk work, on another core.
 *
 * Messages to a worker are handled in the order they were sent, so a state saved after some bytes were posted is
 * the state after exactly those bytes. Bytes go in batches (copied once, into a transferred buffer), and each
 * hasher reports its progress, so a writer waits when its hashing falls behind (BACKLOG): memory stays bounded.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { Worker } from 'node:worker_threads';

/** Bytes gathered before they are posted to the worker. */
const BATCH = 1024 * 1024;
/** Bytes posted but not yet hashed beyond which `update` asks its caller to wait. */
const BACKLOG = 4 * BATCH;

type Request =
  | { op: 'open'; id: number; seq: number; state: string | null }
  | { op: 'update'; id: number; bytes: ArrayBuffer; length: number }
  | { op: 'save' | 'hex'; id: number; seq: number }
  | { op: 'close'; id: number };

/** `hashed` comes with its batch's buffer, handed back for the next batch: no garbage for either thread's GC. */
type Reply =
  | { id: number; hashed: number; bytes: ArrayBuffer }
  | { id: number; seq: number; value?: string; error?: string };

/**
 * The worker, as source: it runs outside the TypeScript build (and so under vitest as under `npm start`), and is
 * given hash-wasm's resolved path. Every request of a hasher runs after the one before it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createSHA256 } = require(workerData.hashWasm);
const hashers = new Map();
let queue = Promise.resolve();
parentPort.on('message', (m) => {
  queue = queue.then(() => handle(m)).catch((error) => {
    if (m.seq !== undefined) parentPort.postMessage({ id: m.id, seq: m.seq, error: String((error && error.message) || error) });
  });
});
async function handle(m) {
  if (m.op === 'open') {
    const hasher = await createSHA256();
    if (m.state === null) hasher.init();
    else hasher.load(Buffer.from(m.state, 'base64'));
    hashers.set(m.id, hasher);
    parentPort.postMessage({ id: m.id, seq: m.seq });
    return;
  }
  if (m.op === 'close') return void hashers.delete(m.id);
  const hasher = hashers.get(m.id);
  if (!hasher) throw new Error('no hasher ' + m.id);
  if (m.op === 'update') {
    hasher.update(new Uint8Array(m.bytes, 0, m.length));
    parentPort.postMessage({ id: m.id, hashed: m.length, bytes: m.bytes }, [m.bytes]);
  } else if (m.op === 'save') {
    parentPort.postMessage({ id: m.id, seq: m.seq, value: Buffer.from(hasher.save()).toString('base64') });
  } else if (m.op === 'hex') {
    parentPort.postMessage({ id: m.id, seq: m.seq, value: hasher.digest('hex') });
  }
}
`;

interface Pending {
  resolve(value: string): void;
  reject(error: Error): void;
}

/** One worker thread and the hashers it holds. */
class HashWorker {
  private readonly worker: Worker;
  readonly channels = new Map<number, WorkerHasher>();
  dead: Error | undefined;

  constructor(hashWasm: string) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { hashWasm } });
    this.worker.on('message', (reply: Reply) => this.channels.get(reply.id)?.receive(reply));
    const die = (error: Error) => {
      this.dead ??= error;
      for (const channel of this.channels.values()) channel.failAll(error);
      this.channels.clear();
      this.worker.unref();
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`the hashing worker exited (${code})`)));
    // An idle pool must not keep the process alive; a busy one must, until its answers are in (see open/close).
    this.worker.unref();
  }

  /** A hasher opened on this worker: the process waits for it. */
  opened(channel: WorkerHasher, id: number): void {
    if (this.channels.size === 0) this.worker.ref();
    this.channels.set(id, channel);
  }

  /** A hasher closed: once none is left, the worker no longer keeps the process alive. */
  closed(id: number): void {
    if (this.channels.delete(id) && this.channels.size === 0) this.worker.unref();
  }

  post(request: Request, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(request, transfer);
  }
}

let nextId = 1;

/** One upload's hasher, held by a worker: bytes in, saved states and the digest out, in order. */
export class WorkerHasher {
  private readonly id = nextId++;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private batch = new Uint8Array(new ArrayBuffer(BATCH));
  private batched = 0;
  /** Batch buffers the worker handed back. */
  private readonly spare: ArrayBuffer[] = [];
  /** Bytes posted to the worker and not yet hashed. */
  private backlog = 0;
  private caughtUp: { below: number; resolve(): void; reject(error: Error): void } | undefined;
  private failure: Error | undefined;
  private closing = false;

  constructor(private readonly worker: HashWorker) {
    worker.opened(this, this.id);
  }

  /** Starts the hasher from a saved state (null: from nothing). Rejects if the state does not load. */
  open(state: string | null): Promise<string> {
    return this.ask((seq) => ({ op: 'open', id: this.id, seq, state }));
  }

  /** Feeds bytes (copied). Returns a promise when the worker is more than BACKLOG behind: wait for it. */
  update(bytes: Uint8Array): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    let offset = 0;
    while (offset < bytes.length) {
      const take = Math.min(bytes.length - offset, BATCH - this.batched);
      this.batch.set(bytes.subarray(offset, offset + take), this.batched);
      this.batched += take;
      offset += take;
      if (this.batched === BATCH) this.flush();
    }
    if (this.backlog <= BACKLOG) return undefined;
    return new Promise((resolve, reject) => (this.caughtUp = { below: BACKLOG / 2, resolve, reject }));
  }

  /** The state after every byte fed so far (base64). */
  save(): Promise<string> {
    this.flush();
    return this.ask((seq) => ({ op: 'save', id: this.id, seq }));
  }

  /** The hex digest of every byte fed so far; the hasher is finished. */
  hex(): Promise<string> {
    this.flush();
    return this.ask((seq) => ({ op: 'hex', id: this.id, seq }));
  }

  /** Frees the hasher in the worker, after every request already made (whose answers still arrive). */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    if (!this.failure) this.worker.post({ op: 'close', id: this.id });
    if (this.pending.size === 0) this.worker.closed(this.id);
  }

  receive(reply: Reply): void {
    if ('hashed' in reply) {
      this.backlog -= reply.hashed;
      if (reply.bytes.byteLength === BATCH) this.spare.push(reply.bytes);
      if (this.caughtUp && this.backlog <= this.caughtUp.below) {
        this.caughtUp.resolve();
        this.caughtUp = undefined;
      }
      return;
    }
    const pending = this.pending.get(reply.seq);
    this.pending.delete(reply.seq);
    if (reply.error !== undefined) pending?.reject(new Error(`hashing failed: ${reply.error}`));
    else pending?.resolve(reply.value ?? '');
    if (this.closing && this.pending.size === 0) this.worker.closed(this.id);
  }

  failAll(error: Error): void {
    this.failure = error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
    this.caughtUp?.reject(error);
    this.caughtUp = undefined;
  }

  private flush(): void {
    if (this.batched === 0 || this.failure) return;
    const bytes = this.batch.buffer as ArrayBuffer;
    this.worker.post({ op: 'update', id: this.id, bytes, length: this.batched }, [bytes]);
    this.backlog += this.batched;
    this.batch = new Uint8Array(this.spare.pop() ?? new ArrayBuffer(BATCH));
    this.batched = 0;
  }

  private ask(request: (seq: number) => Request): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    const seq = this.seq++;
    const answer = new Promise<string>((resolve, reject) => this.pending.set(seq, { resolve, reject }));
    this.worker.post(request(seq));
    return answer;
  }
}

/** One worker per spare core (one at least, four at most), started when first needed. */
const POOL_SIZE = Math.max(1, Math.min(4, os.availableParallelism() - 1));
const pool: HashWorker[] = [];
const hashWasm = createRequire(import.meta.url).resolve('hash-wasm');

/** A new hasher on the least busy worker. */
export function newWorkerHasher(): WorkerHasher {
  for (let i = pool.length - 1; i >= 0; i--) if (pool[i]!.dead) pool.splice(i, 1);
  let worker = pool.reduce<HashWorker | undefined>(
    (a, b) => (a && a.channels.size <= b.channels.size ? a : b),
    undefined,
  );
  if (!worker || (worker.channels.size > 0 && pool.length < POOL_SIZE)) {
    worker = new HashWorker(hashWasm);
    pool.push(worker);
  }
  return new WorkerHasher(worker);
}
