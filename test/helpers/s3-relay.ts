/**
 * An HTTP relay in front of the S3 gateway that lets a test act at the exact step of an S3 conversation: before a
 * request reaches S3 (hold it back), or once S3 has answered and before the answer reaches Freight (take the
 * database away, kill the process). Requests and answers pass unchanged (the Host header too, so SigV4 signatures
 * hold). Unlike ./proxy.ts, which fails a dependency below the protocol, this one sees which S3 call is which.
 */
import http from 'node:http';

/** One S3 call as the relay sees it. */
export interface S3Call {
  method: string;
  /** The path, without the query: /<bucket>/<key>. */
  path: string;
  query: URLSearchParams;
  /** S3's status, once it answered. */
  status?: number;
}

/** CompleteMultipartUpload: POST /<bucket>/<key>?uploadId=… */
export const isCompleteMultipartUpload = (call: S3Call): boolean =>
  call.method === 'POST' && call.query.has('uploadId');
/** UploadPart (or UploadPartCopy): PUT /<bucket>/<key>?partNumber=…&uploadId=… */
export const isUploadPart = (call: S3Call): boolean => call.method === 'PUT' && call.query.has('partNumber');

export interface S3RelayHooks {
  /** Awaited before the request is sent on to S3. */
  beforeRequest?(call: S3Call): Promise<void> | void;
  /** Awaited once S3 answered (status set), before the answer is passed back. */
  beforeAnswer?(call: S3Call): Promise<void> | void;
}

export interface S3Relay {
  readonly url: string;
  /** Every call so far, in the order they arrived. */
  readonly calls: readonly S3Call[];
  hooks: S3RelayHooks;
  close(): Promise<void>;
}

export async function s3Relay(target: string, hooks: S3RelayHooks = {}): Promise<S3Relay> {
  const upstream = new URL(target);
  const calls: S3Call[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const relay: S3Relay = {
    url: '',
    calls,
    hooks,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const parsed = new URL(req.url ?? '/', 'http://relay.invalid');
    const call: S3Call = { method: req.method ?? 'GET', path: parsed.pathname, query: parsed.searchParams };
    calls.push(call);
    const fail = (error: unknown) => {
      if (!res.headersSent) res.writeHead(502);
      res.destroy(error instanceof Error ? error : undefined);
    };
    void (async () => {
      await relay.hooks.beforeRequest?.(call);
      const forward = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          call.status = answer.statusCode;
          void (async () => {
            await relay.hooks.beforeAnswer?.(call);
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          })().catch(fail);
        },
      );
      forward.on('error', fail);
      req.pipe(forward);
    })().catch(fail);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  Object.assign(relay, { url: `http://127.0.0.1:${port}` });
  return relay;
}
