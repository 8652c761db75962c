#!/usr/bin/env node
/**
 * `freight <command> …`: one table of subcommands, one module each. This tree has only `upload`; the admin
 * commands (serve, migrate, cleanup, token, uploads) join the same table.
 */
import type { CliCommand } from './command.js';
import { uploadCommand } from './upload.js';

// The AWS SDK's notice about future Node versions says nothing about this command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const commands: Record<string, CliCommand> = {
  upload: uploadCommand,
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`);
  return ['usage: freight <command> [options]', '', 'commands:', ...lines, '', 'freight <command> --help for its options'].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`freight: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  return command.run(args);
}

// exit at once: idle keep-alive connections would otherwise hold the process for seconds (stdout is written
// synchronously to files, pipes and terminals on Linux, so nothing printed is lost).
process.exit(await main(process.argv.slice(2)));
