#!/usr/bin/env node
/** The `freight` command (package.json "bin"): `npx freight --help` after `npm run build`. */
import { dispatch } from './dispatch.js';

// The AWS SDK is pinned to releases that support Node 20 (see package.json); its notice that later releases
// will need Node 22 says nothing about this program.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exit(await dispatch(process.argv.slice(2), process.env));
