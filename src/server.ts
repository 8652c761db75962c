/** The entry point of `npm start`: `freight serve` (src/cli/serve.ts), with the same exit codes. */
import { dispatch } from './cli/dispatch.js';

// The AWS SDK is pinned to releases that support Node 20 (see package.json); its notice that later releases
// will need Node 22 says nothing about this server.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exit(await dispatch(['serve', ...process.argv.slice(2)], process.env));
