/**
 * `freight <command> …`: the table of subcommands, each a module of its own under src/cli/ loaded on demand.
 * Adding a command is one line here.
 */
import { CliError, type Command, type Env } from './command.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ command: Command }> }> = {
  serve: { summary: 'run the server (what npm start runs)', load: () => import('./serve.js') },
  migrate: { summary: 'apply the database migrations and exit', load: () => import('./migrate.js') },
  cleanup: {
    summary: 'run the janitor once (--dry-run: only list what it would do)',
    load: () => import('./cleanup.js'),
  },
  token: { summary: 'print a bearer token for a user', load: () => import('./token.js') },
  uploads: { summary: 'list uploads, or show one, from the database', load: () => import('./uploads.js') },
  upload: { summary: 'upload files, resumably (tus, or --direct to S3)', load: () => import('./upload.js') },
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, { summary }]) => `  ${name.padEnd(width)}  ${summary}`);
  return `Usage: freight <command> [options]

Freight, a resumable upload server. Every command reads the server's configuration from the environment
(see docs/configuration.md).

Commands:
${lines.join('\n')}

freight <command> --help shows a command's options.
`;
}

/** Runs `argv` (the arguments after `freight`) and resolves with the exit code; never throws. */
export async function dispatch(argv: string[], env: Env): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? args[0] : undefined;
    if (topic === undefined) {
      (name === undefined ? process.stderr : process.stdout).write(overview());
      return name === undefined ? 2 : 0;
    }
    return dispatch([topic, '--help'], env);
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    process.stderr.write(`freight: unknown command "${name}" (see freight --help)\n`);
    return 2;
  }
  try {
    const { command } = await entry.load();
    if (args.includes('--help') || args.includes('-h')) {
      process.stdout.write(command.usage);
      return 0;
    }
    return await command.run(args, env);
  } catch (error) {
    if (error instanceof CliError) {
      process.stderr.write(`${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(
      `freight ${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  }
}
