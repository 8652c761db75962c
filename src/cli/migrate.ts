/** freight migrate: apply the committed migrations (drizzle/) to the configured database, and exit. */
import path from 'node:path';
import { openDatabase } from '../db/client.js';
import { configFrom, parse, usageError, type Command } from './command.js';

/** The database named without its password: host, port and name. */
function describe(url: string | undefined, dataDir: string): string {
  if (!url) return `the embedded database in ${path.join(dataDir, 'db')}`;
  const parsed = new URL(url);
  return `PostgreSQL database "${decodeURIComponent(parsed.pathname.slice(1)) || parsed.username}" on ${parsed.host}`;
}

export const command: Command = {
  usage: `Usage: freight migrate

Applies the migrations in drizzle/ to DATABASE_URL (or to the embedded database under DATA_DIR) and exits.
Safe to run while instances start: migrations take a lock and are applied once. The server applies them at
start too; this command does it ahead of a deployment.
`,
  async run(args, env) {
    const { positionals } = parse('migrate', args, {});
    if (positionals.length > 0) throw usageError('migrate', `unexpected argument "${positionals[0]}"`);
    const config = configFrom(env);
    const database = await openDatabase({
      url: config.databaseUrl,
      dataDir: config.dataDir,
      timeoutMs: config.databaseTimeoutMs,
    });
    await database.close();
    process.stdout.write(`migrations applied to ${describe(config.databaseUrl, config.dataDir)}\n`);
    return 0;
  },
};
