/** A bad configuration value: its message names the variable first (server.ts prints it as one line and exits 1). */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}
