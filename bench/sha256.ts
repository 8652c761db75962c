/**
 * npm run bench:sha256: the ways to keep a running SHA-256 with a saveable state, side by side in one run.
 * 256 MiB in 64 KiB chunks (what a tus body arrives in), the state saved every 8 MiB (a part), each way checked
 * against crypto.createHash, rounds alternating; the median round of each is reported, with the process's CPU
 * and how long the main thread was busy (what the event loop could not spend on requests).
 *
 *   npm run bench:sha256
 *   npm run bench:sha256 -- --rounds 5 --sodium-native /tmp/x/node_modules/sodium-native
 *
 * sodium-native is not a dependency of Freight: `--sodium-native` names a copy installed elsewhere
 * (npm install --prefix /tmp/x sodium-native@5.1.0) to measure it too.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { createSHA256 } from 'hash-wasm';
import { RunningDigest } from '../src/uploads/digest.js';
import { nativeBinaryPath, nativeSha256 } from '../src/uploads/sha256/native.js';
import { MB, MiB, median } from './numbers.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    size: { type: 'string', default: '256' },
    'sodium-native': { type: 'string' },
  },
});
const TOTAL = Number(args.size) * MiB;
const CHUNK = 64 * 1024;
const SAVE_EVERY = 8 * MiB;
/** What the worker rows post at once (as hash-workers.ts did). */
const BATCH = MiB;
const require = createRequire(import.meta.url);

const source = randomBytes(16 * MiB);
function* chunks(): Generator<Buffer> {
  for (let at = 0; at < TOTAL; at += CHUNK) {
    const from = at % source.length;
    yield source.subarray(from, from + CHUNK);
  }
}
const expected = (() => {
  const hash = createHash('sha256');
  for (const chunk of chunks()) hash.update(chunk);
  return hash.digest('hex');
})();

/** One way: hashes every chunk, saving every SAVE_EVERY bytes, and answers the hex digest (undefined: cannot save). */
type Way = () => Promise<string | undefined>;

/**
 * The worker rows: a worker thread holding the hasher, sent 1 MiB batches (copied into a transferred buffer,
 * handed back once hashed), asked for a state every 8 MiB; the way hash-workers.ts ran hash-wasm.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
async function open() {
  if (workerData.kind === 'hash-wasm') {
    const hasher = await require(workerData.module).createSHA256();
    hasher.init();
    return { update: (b) => hasher.update(b), save: () => hasher.save(), hex: () => hasher.digest('hex') };
  }
  const sha = require(workerData.module);
  const ctx = new Uint8Array(sha.contextSize);
  sha.init(ctx);
  return { update: (b) => sha.update(ctx, b), save: () => sha.save(ctx), hex: () => Buffer.from(sha.digest(ctx)).toString('hex') };
}
open().then((hasher) => {
  parentPort.on('message', (m) => {
    if (m.op === 'update') {
      hasher.update(new Uint8Array(m.bytes, 0, m.length));
      parentPort.postMessage({ hashed: m.length, bytes: m.bytes }, [m.bytes]);
    } else if (m.op === 'save') hasher.save();
    else parentPort.postMessage({ hex: hasher.hex() });
  });
  parentPort.postMessage({ ready: true });
});
`;

function onWorker(kind: 'hash-wasm' | 'native', module: string): Way {
  return async () => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { kind, module } });
    const spare: ArrayBuffer[] = [];
    let backlog = 0;
    let caughtUp: (() => void) | undefined;
    let done: ((hex: string) => void) | undefined;
    await new Promise<void>((resolve) => worker.once('message', () => resolve()));
    worker.on('message', (m: { hashed?: number; bytes?: ArrayBuffer; hex?: string }) => {
      if (m.hashed !== undefined) {
        backlog -= m.hashed;
        spare.push(m.bytes!);
        if (caughtUp && backlog <= 2 * BATCH) caughtUp();
      } else if (m.hex !== undefined) done?.(m.hex);
    });
    let batch = new Uint8Array(BATCH);
    let batched = 0;
    const flush = () => {
      if (batched === 0) return;
      const bytes = batch.buffer as ArrayBuffer;
      worker.postMessage({ op: 'update', bytes, length: batched }, [bytes]);
      backlog += batched;
      batch = new Uint8Array(spare.pop() ?? new ArrayBuffer(BATCH));
      batched = 0;
    };
    let fed = 0;
    for (const chunk of chunks()) {
      batch.set(chunk, batched);
      batched += chunk.length;
      fed += chunk.length;
      if (batched === BATCH) flush();
      if (fed % SAVE_EVERY === 0) {
        flush();
        worker.postMessage({ op: 'save' });
      }
      if (backlog > 4 * BATCH) await new Promise<void>((resolve) => (caughtUp = resolve));
      caughtUp = undefined;
    }
    flush();
    const hex = await new Promise<string>((resolve) => {
      done = resolve;
      worker.postMessage({ op: 'hex' });
    });
    await worker.terminate();
    return hex;
  };
}

const sha = nativeSha256();
const ways: Record<string, Way> = {
  'hash-wasm, in place': async () => {
    const hasher = await createSHA256();
    hasher.init();
    let fed = 0;
    for (const chunk of chunks()) {
      hasher.update(chunk);
      fed += chunk.length;
      if (fed % SAVE_EVERY === 0) hasher.save();
    }
    return hasher.digest('hex');
  },
  'hash-wasm, on a worker (before)': onWorker('hash-wasm', require.resolve('hash-wasm')),
  'native, in place': async () => {
    const context = new Uint8Array(sha.contextSize);
    sha.init(context);
    let fed = 0;
    for (const chunk of chunks()) {
      sha.update(context, chunk);
      fed += chunk.length;
      if (fed % SAVE_EVERY === 0) sha.save(context);
    }
    return Buffer.from(sha.digest(context)).toString('hex');
  },
  'native, on a worker': onWorker('native', nativeBinaryPath()),
  'native, libuv threadpool (RunningDigest)': async () => {
    const digest = (await RunningDigest.resume(null, 0))!;
    let fed = 0;
    const saves: Promise<string>[] = [];
    for (const chunk of chunks()) {
      const behind = digest.update(chunk);
      if (behind) await behind;
      fed += chunk.length;
      if (fed % SAVE_EVERY === 0) saves.push(digest.save());
    }
    await Promise.all(saves);
    const hex = await digest.hex();
    digest.close();
    return hex;
  },
  'crypto.createHash (no saveable state)': async () => {
    const hash = createHash('sha256');
    for (const chunk of chunks()) hash.update(chunk);
    return hash.digest('hex');
  },
};
if (args['sodium-native']) {
  interface Sodium {
    crypto_hash_sha256_STATEBYTES: number;
    crypto_hash_sha256_init(state: Buffer): void;
    crypto_hash_sha256_update(state: Buffer, bytes: Buffer): void;
    crypto_hash_sha256_final(state: Buffer, out: Buffer): void;
  }
  const sodium = require(args['sodium-native']) as Sodium;
  ways['sodium-native 5.1.0, in place'] = async () => {
    const state = Buffer.alloc(sodium.crypto_hash_sha256_STATEBYTES);
    sodium.crypto_hash_sha256_init(state);
    let fed = 0;
    for (const chunk of chunks()) {
      sodium.crypto_hash_sha256_update(state, chunk);
      fed += chunk.length;
      // Its state is a plain buffer: saving is a copy.
      if (fed % SAVE_EVERY === 0) Buffer.from(state);
    }
    const out = Buffer.alloc(32);
    sodium.crypto_hash_sha256_final(state, out);
    return out.toString('hex');
  };
}

interface Round {
  seconds: number;
  cpuSeconds: number;
  mainBusyMs: number;
}

async function measure(way: Way): Promise<Round> {
  const elu = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const hex = await way();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  if (hex !== undefined && hex !== expected) throw new Error(`a wrong digest: ${hex}, not ${expected}`);
  return {
    seconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    mainBusyMs: performance.eventLoopUtilization(elu).active,
  };
}

const rounds = new Map<string, Round[]>(Object.keys(ways).map((name) => [name, []]));
await measure(ways['native, in place']!);
for (let round = 0; round < Number(args.rounds); round++) {
  for (const [name, way] of Object.entries(ways)) rounds.get(name)!.push(await measure(way));
}

const summary = [...rounds].map(([name, runs]) => ({
  name,
  mbPerSecond: TOTAL / MB / median(runs.map((r) => r.seconds)),
  cpuSeconds: median(runs.map((r) => r.cpuSeconds)),
  mainBusyMs: median(runs.map((r) => r.mainBusyMs)),
}));
const base = summary[0]!;
console.log(
  `${TOTAL / MiB} MiB in ${CHUNK / 1024} KiB chunks, state saved every ${SAVE_EVERY / MiB} MiB, median of ${args.rounds} rounds\n`,
);
console.log('| way | MB/s | × hash-wasm | CPU s | MB per CPU s | × hash-wasm | main thread busy, ms |');
console.log('|---|---|---|---|---|---|---|');
for (const row of summary) {
  const perCpu = TOTAL / MB / row.cpuSeconds;
  console.log(
    `| ${row.name} | ${row.mbPerSecond.toFixed(0)} | ${(row.mbPerSecond / base.mbPerSecond).toFixed(2)} | ` +
      `${row.cpuSeconds.toFixed(2)} | ${perCpu.toFixed(0)} | ${(base.cpuSeconds / row.cpuSeconds).toFixed(2)} | ` +
      `${row.mainBusyMs.toFixed(0)} |`,
  );
}
