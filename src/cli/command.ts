/**
 * What every `freight` subcommand shares: its shape (a usage text and a run function), argument parsing with
 * node:util's parseArgs, and the server's own configuration from the environment (a bad variable is the same
 * one line as the server's, exit code 1).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/index.js';

export type Env = Record<string, string | undefined>;

export interface Command {
  /** The text of `freight <command> --help`. */
  usage: string;
  /** Runs the command; resolves with the process's exit code. */
  run(args: string[], env: Env): Promise<number>;
}

/** An error that ends the command with `exitCode` after printing `message` (one line) on stderr. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A mistake in the command line: exit code 2, and a pointer to --help. */
export const usageError = (command: string, problem: string) =>
  new CliError(`freight ${command}: ${problem} (see freight ${command} --help)`, 2);

type Options = NonNullable<ParseArgsConfig['options']>;

/** The command's options and positionals, or a usage error; `help` is true for --help/-h (print usage, exit 0). */
export function parse<O extends Options>(command: string, args: string[], options: O) {
  try {
    return parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw usageError(command, error instanceof Error ? error.message.replace(/\. To specify.*$/s, '') : String(error));
  }
}

/** The server's configuration, exactly as the server reads it. */
export function configFrom(env: Env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`freight: invalid configuration: ${error.message}`, 1);
    throw error;
  }
}
