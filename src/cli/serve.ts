/** freight serve: read the environment, build the app, listen, and shut down gracefully on SIGINT/SIGTERM. */
import path from 'node:path';
import { buildApp } from '../app.js';
import { formatBytes } from '../config/units.js';
import { configFrom, parse, usageError, type Command } from './command.js';

/** After SIGTERM, in-flight uploads get this long to finish before their connections are cut (they resume). */
const SHUTDOWN_GRACE_MS = 10_000;

export const command: Command = {
  usage: `Usage: freight serve

Runs the server (what npm start runs): tus at /files/, direct uploads at /api/multipart, the owner's API at
/api/uploads, /healthz, /readyz and /metrics, configured by the environment (HOST, PORT, DATABASE_URL,
S3_BUCKET …; see docs/configuration.md). SIGINT or SIGTERM stops it, giving requests in flight ${SHUTDOWN_GRACE_MS / 1000} s.
`,
  async run(args, env) {
    const { positionals } = parse('serve', args, {});
    if (positionals.length > 0) throw usageError('serve', `unexpected argument "${positionals[0]}"`);
    const config = configFrom(env);
    const app = await buildApp(config);
    await app.listen({ host: config.host, port: config.port });
    app.log.info(
      {
        storage: config.s3 ? `s3://${config.s3.bucket}` : path.join(config.dataDir, 'files'),
        database: config.databaseUrl ? 'postgres' : path.join(config.dataDir, 'db'),
        maxUploadSize: formatBytes(config.maxUploadSize),
        partSize: formatBytes(config.partSize),
        tempDir: config.tempDir,
      },
      `freight serving tus at http://${config.host}:${config.port}/files/`,
    );
    return new Promise<number>((resolve) => {
      let stopping = false;
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        process.on(signal, () => {
          if (stopping) return;
          stopping = true;
          app.log.info(`${signal}: finishing in-flight requests (up to ${SHUTDOWN_GRACE_MS / 1000} s)`);
          setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
          app.close().then(
            () => resolve(0),
            (error: unknown) => {
              app.log.error({ err: error }, 'shutdown failed');
              resolve(1);
            },
          );
        });
      }
    });
  },
};
