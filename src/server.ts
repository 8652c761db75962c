/** The entry point: read the environment, build the app, listen, and shut down gracefully. */
import path from 'node:path';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config/index.js';
import { formatBytes } from './config/units.js';

/** After SIGTERM, in-flight uploads get this long to finish before their connections are cut (they resume). */
const SHUTDOWN_GRACE_MS = 10_000;

// The AWS SDK is pinned to releases that support Node 20 (see package.json); its notice that later releases
// will need Node 22 says nothing about this server.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

let config: Config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`freight: invalid configuration: ${error.message}`);
    process.exit(1);
  }
  throw error;
}

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

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    app.log.info(`${signal}: finishing in-flight requests (up to ${SHUTDOWN_GRACE_MS / 1000} s)`);
    setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        app.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
