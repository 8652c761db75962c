/** One subcommand of `freight`: what `freight --help` says of it, and how it runs (its exit code). */
export interface CliCommand {
  summary: string;
  /** Runs with the arguments after the subcommand's name; resolves with the process's exit code. */
  run(args: string[]): Promise<number>;
}
