// `npm install` / `npm ci` run this (package.json "install"): it builds native/sha256 (Freight's running SHA-256)
// with node-gyp against the headers of the Node that runs it, and fails the install, loudly, when it cannot:
// Freight has no slower fallback. Headers and binaries are never downloaded: the headers come from npm's
// `nodedir` setting, else from the Node installation itself (<prefix>/include/node, as Node's own packages,
// official tarballs and the node Docker images install them).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function fail(lines) {
  const rule = '='.repeat(100);
  console.error([rule, 'Freight: the native SHA-256 (native/sha256) could not be built.', ...lines, rule].join('\n'));
  process.exit(1);
}

const nodedir = process.env.npm_config_nodedir || path.resolve(process.execPath, '..', '..');
if (!existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) {
  fail([
    `Node's headers are not in ${path.join(nodedir, 'include', 'node')}: install them with Node (the nodejs`,
    'package of your distribution, or its -dev package) or point npm at them (npm config set nodedir <prefix>).',
  ]);
}

// npm hands its own node-gyp to install scripts; outside npm, the one on the PATH.
const gyp = process.env.npm_config_node_gyp;
const [command, ...prefix] = gyp ? [process.execPath, gyp] : ['node-gyp'];
const built = spawnSync(command, [...prefix, 'rebuild', `--nodedir=${nodedir}`, `--directory=${here}`], {
  stdio: 'inherit',
});
if (built.status !== 0) {
  fail([
    built.error ? `node-gyp did not run: ${built.error.message}` : `node-gyp exited with ${built.status}.`,
    'It needs python3, make and a C compiler (Debian: apt-get install python3 make g++), and OpenSSL headers:',
    `Node's own (${path.join(nodedir, 'include', 'node', 'openssl')}), or libssl-dev for a Node built on the`,
    "system's OpenSSL. Then run `npm run install`.",
  ]);
}
