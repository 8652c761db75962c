/**
 * A TCP relay in front of a service (S3 over HTTP, PostgreSQL, anything on TCP) that a test can fail in the two ways
 * a real dependency fails: it goes away (connections refused) or it stops answering (connections accepted, nothing
 * comes back). It works below the protocol, so the client under test sees exactly what it would see from a dead or
 * hung server.
 */
import net from 'node:net';

export type ProxyMode = 'up' | 'down' | 'held' | 'refusing';

export interface HoldingProxy {
  /** `target` with its host and port replaced by the relay's (user, database and path are kept). */
  readonly url: string;
  readonly port: number;
  readonly mode: ProxyMode;
  /** Bytes forwarded so far each way, over every connection (not what a hold keeps back): client to target, and back. */
  readonly relayed: { readonly toTarget: number; readonly fromTarget: number };
  /** Relays again (listening on the same port as before). */
  up(): Promise<void>;
  /** Closes the listener and every relayed socket: new connections get ECONNREFUSED, open ones are reset. */
  down(): Promise<void>;
  /**
   * Keeps accepting connections and keeps every socket open, but forwards nothing either way: a hung server. What
   * arrives meanwhile is read (up to HOLD_READ_BYTES a socket, then left to TCP) so that a test can see it come.
   */
  hold(): Promise<void>;
  /**
   * Resolves once a client's byte reached the relay while it holds (since the current hold() began): the request
   * the test waits for is in the relay. An event, not a poll.
   */
  heldArrival(): Promise<void>;
  /** Calls `listener` with every chunk a client sends towards the target (held or not); returns the unsubscribe. */
  watch(listener: (chunk: Buffer) => void): () => void;
  /** Back to relaying. What was sent while held is then forwarded late, as from a server that woke up. */
  release(): Promise<void>;
  /**
   * Gone, but watched: like down() (every relayed socket is cut), except that the port still accepts, and resets
   * each new connection at once (the client sees ECONNRESET). A test can then see the client try again.
   */
  refuse(): Promise<void>;
  /** Resolves once a connection has been reset by refuse() since it began: the client tried during the outage. */
  refusedArrival(): Promise<void>;
  /**
   * Resolves once the relay holds no connection: every client has gone, and every connection whose client left
   * while held has been closed by its target. Such a connection is half-closed towards the target (what the hold kept
   * back is dropped), so the target finishes a request it had whole, answers into nothing and closes: after this,
   * the target is done with every request that came through the relay. Called while held, it reads the clients'
   * sockets on (keeping what they send, as the hold does), so that a client that had filled the hold is seen to go.
   */
  idle(): Promise<void>;
}

/** What a held relay reads from each socket (and keeps, in order) before it leaves the rest to TCP. */
const HOLD_READ_BYTES = 64 * 1024;

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'postgres:': 5432, 'postgresql:': 5432 };

/** One relayed connection: the client's socket and the one to the target. */
interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

export async function holdingProxy(target: string): Promise<HoldingProxy> {
  const parsed = new URL(target);
  const targetHost = parsed.hostname;
  const targetPort = Number(parsed.port) || DEFAULT_PORTS[parsed.protocol];
  if (!targetPort) throw new Error(`holdingProxy: no port in ${target}`);

  const pairs = new Set<Pair>();
  /** Target sockets whose client left while held, until the target closes them. */
  const orphans = new Set<net.Socket>();
  const idleWaiters: Array<() => void> = [];
  const isIdle = () => pairs.size === 0 && orphans.size === 0;
  const maybeIdle = () => {
    if (isIdle()) for (const resolve of idleWaiters.splice(0)) resolve();
  };
  /** Set by idle() while held: clients' sockets are read to their end (a paused socket would never show its close). */
  let readingClientsToEnd = false;
  let refusedSinceRefuse = false;
  const refusalWaiters: Array<() => void> = [];
  let mode: ProxyMode = 'down';
  let server: net.Server | undefined;
  let listenPort = 0;
  const relayed = { toTarget: 0, fromTarget: 0 };

  const watchers = new Set<(chunk: Buffer) => void>();
  /** Resolvers of heldArrival(), called at the first client byte that comes while held. */
  const arrivalWaiters: Array<() => void> = [];
  let arrivedWhileHeld = false;
  /** Flushes of what each direction read while held, run (in order) when the relay is up again. */
  const flushes = new Set<() => void>();

  // One direction of a pair. Not stream.pipe(): pipe() resumes its source on the destination's 'drain', which would
  // undo a hold; here the flow only resumes when the relay is up. While held, what arrives is queued in order.
  const relay = (from: net.Socket, to: net.Socket, direction: keyof typeof relayed) => {
    const queue: Buffer[] = [];
    let queued = 0;
    let ended = false;
    const forward = (chunk: Buffer) => {
      relayed[direction] += chunk.length;
      if (!to.write(chunk)) from.pause();
    };
    const flush = () => {
      for (const chunk of queue.splice(0)) forward(chunk);
      queued = 0;
      if (ended) to.end();
    };
    flushes.add(flush);
    from.on('close', () => flushes.delete(flush));
    from.on('data', (chunk: Buffer) => {
      if (direction === 'toTarget') for (const watcher of watchers) watcher(chunk);
      if (mode === 'up' && queue.length === 0) return forward(chunk);
      queue.push(chunk);
      queued += chunk.length;
      if (direction === 'toTarget' && mode === 'held' && !arrivedWhileHeld) {
        arrivedWhileHeld = true;
        for (const resolve of arrivalWaiters.splice(0)) resolve();
      }
      if (queued >= HOLD_READ_BYTES && !(direction === 'toTarget' && readingClientsToEnd)) from.pause();
    });
    to.on('drain', () => {
      if (mode === 'up') from.resume();
    });
    from.on('end', () => {
      ended = true;
      if (mode === 'up' && queue.length === 0) to.end();
    });
  };

  const accept = (client: net.Socket) => {
    if (mode === 'refusing') {
      client.resetAndDestroy();
      refusedSinceRefuse = true;
      for (const resolve of refusalWaiters.splice(0)) resolve();
      return;
    }
    // The target is connected even while held: a hung server's kernel still completes the handshake.
    const upstream = net.connect(targetPort, targetHost);
    const pair = { client, upstream };
    pairs.add(pair);
    for (const socket of [client, upstream]) {
      // A reset on either side ends both (the client sees what it would see if the server dropped it).
      socket.on('error', () => {});
      socket.on('close', () => {
        pairs.delete(pair);
        if (socket === client && mode === 'held' && !upstream.destroyed) {
          // A client that left a hung server: the server still has what reached it before the hold.
          orphans.add(upstream);
          upstream.end();
          return;
        }
        client.destroy();
        upstream.destroy();
        orphans.delete(upstream);
        maybeIdle();
      });
      // Held: reading goes on into the queues (see relay); nothing is forwarded.
    }
    relay(client, upstream, 'toTarget');
    relay(upstream, client, 'fromTarget');
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      if (server) return resolve();
      const listening = net.createServer(accept);
      listening.once('error', reject);
      // Port 0 the first time; afterwards the same port, so clients configured with `url` find it again.
      listening.listen(listenPort, '127.0.0.1', () => {
        listenPort = (listening.address() as net.AddressInfo).port;
        server = listening;
        resolve();
      });
    });

  const setFlow = (flowing: boolean) => {
    if (flowing) for (const flush of flushes) flush();
    for (const { client, upstream } of pairs) {
      for (const socket of [client, upstream]) {
        if (flowing) socket.resume();
      }
    }
  };

  const up = async () => {
    readingClientsToEnd = false;
    await listen();
    mode = 'up';
    setFlow(true);
  };

  const cut = (next: ProxyMode) => {
    mode = next;
    for (const { client, upstream } of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
    for (const upstream of orphans) upstream.destroy();
    maybeIdle();
  };

  const down = () =>
    new Promise<void>((resolve) => {
      cut('down');
      const closing = server;
      server = undefined;
      // close() stops accepting at once and calls back once the (already destroyed) connections are gone.
      if (closing) closing.close(() => resolve());
      else resolve();
    });

  const hold = async () => {
    readingClientsToEnd = false;
    await listen();
    if (mode !== 'held') arrivedWhileHeld = false;
    mode = 'held';
  };

  const refuse = async () => {
    await listen();
    if (mode !== 'refusing') refusedSinceRefuse = false;
    cut('refusing');
  };

  await up();
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String(listenPort);
  // new URL() adds a '/' path to http URLs; keep the target's own form (S3 endpoints are given without it).
  const href = !target.endsWith('/') && url.href.endsWith('/') ? url.href.slice(0, -1) : url.href;

  return {
    url: href,
    port: listenPort,
    get mode() {
      return mode;
    },
    relayed,
    up,
    down,
    hold,
    release: up,
    heldArrival: () =>
      arrivedWhileHeld && mode === 'held'
        ? Promise.resolve()
        : new Promise<void>((resolve) => arrivalWaiters.push(resolve)),
    refuse,
    refusedArrival: () =>
      refusedSinceRefuse && mode === 'refusing'
        ? Promise.resolve()
        : new Promise<void>((resolve) => refusalWaiters.push(resolve)),
    idle: () => {
      if (isIdle()) return Promise.resolve();
      if (mode === 'held') {
        // A client that filled the hold is paused: read on (and keep what comes, as the hold does) to see it leave.
        readingClientsToEnd = true;
        for (const { client } of pairs) client.resume();
      }
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    watch: (listener) => {
      watchers.add(listener);
      return () => watchers.delete(listener);
    },
  };
}
