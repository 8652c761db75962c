/**
 * A TCP relay that can slow the bytes a client sends (so that a test can act in the middle of an upload on any
 * machine) and cut every connection (a network that drops), then let new ones through again.
 */
import net from 'node:net';

export interface ThrottlingProxy {
  /** `target` with its host and port replaced by the relay's. */
  readonly url: string;
  /** Client-to-target bytes per second, per connection; undefined for no limit. */
  rate: number | undefined;
  /** Bytes relayed from clients to the target so far, over every connection. */
  readonly sent: number;
  /** Resets every open connection and refuses new ones until restore(). */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function throttlingProxy(target: string): Promise<ThrottlingProxy> {
  const parsed = new URL(target);
  const sockets = new Set<net.Socket>();
  let cut = false;
  let sent = 0;
  const state: { rate: number | undefined } = { rate: undefined };

  const server = net.createServer((client) => {
    if (cut) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(Number(parsed.port) || 80, parsed.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      upstream.write(chunk);
      if (state.rate !== undefined) {
        // Hold the client back for as long as this chunk takes at the rate: TCP backpressure does the rest.
        client.pause();
        setTimeout(() => client.resume(), (chunk.length / state.rate) * 1000);
      }
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  const href = !target.endsWith('/') && url.href.endsWith('/') ? url.href.slice(0, -1) : url.href;

  return {
    url: href,
    get rate() {
      return state.rate;
    },
    set rate(value) {
      state.rate = value;
    },
    get sent() {
      return sent;
    },
    cut() {
      cut = true;
      for (const socket of sockets) socket.resetAndDestroy();
    },
    restore() {
      cut = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
